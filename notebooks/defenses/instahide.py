# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # InstaHide
#
# Huang, Song, Li and Arora, *InstaHide: Instance-hiding Schemes for Private
# Distributed Learning*, ICML 2020.
#
# **Claim.** Encrypting every training image with a one-time key, a MixUp of
# k images followed by a random pixel-wise sign flip, costs little test
# accuracy while hiding the images from an attacker.
#
# **Defense.** Inside-dataset InstaHide (Intra-InstaHide in Huang et al. 2021):
# the private image is mixed with k-1 other private images, coefficients from
# Dirichlet(3, 1, ..., 1) bounded by c_2 = 0.65 (the official code's
# defaults), and every pixel's sign is flipped at random in the model's
# normalised space (`gi_lib.defenses.instahide`). Cross-dataset InstaHide
# replaces all but one partner with public images, which carry no label. The
# paper's public set is ImageNet, which is not available here; a stand-in of
# `public_images` held-out CIFAR-10 training images (never trained or tested
# on) takes its place, so the public images here come from the same
# distribution as the private ones. The paper's lower bound on the two
# private images' total weight (`dom`, c_1 = 0.3) is not applied.
#
# **Setting.** Utility: the ConvNet trained without InstaHide, with
# inside-dataset InstaHide (k=4) and, when `public_images` > 0, with
# cross-dataset InstaHide, tested on clean images; the paper trains ResNet-18
# on all of CIFAR-10 for 200 epochs. Attack: DLG on DLG's LeNet, one image per
# update, against no defense, MixUp of the same k images, and both InstaHide
# variants; PSNR against the private image.
#
# **Threat model.** The attacker sees the model and the gradient of the
# encrypted batch; the partners, coefficients and mask are the client's key.

# %% tags=["remove-cell"]
from IPython.display import Markdown
from myst_nb import glue

from gi_lib.experiments import instahide as experiment
from gi_lib.notebook import Page
from gi_lib.results import claims_table, rows_frame

page = Page(experiment, globals())

# %% tags=["parameters"]
profile = "cpu"
dataset = "cifar10"
model = "convnet8"
num_trials = 3
seed = 0
device = "auto"
num_threads = 1
attack = "dlg"
attack_model = "lenet"
max_iterations = 100
train_epochs = 3
train_images = 3000
train_lr = 0.01
batch_size = 64
num_shown = 2
k = 4
upper = 0.65
public_images = 1000

# %%
params = page.check(globals())

# %% [markdown]
# ## One attack, step by step
#
# One private image, the client's other images it is mixed with, and DLG's
# LeNet. The client trains on the encoding (MixUp of `k` images, then a random
# sign flip of every pixel): the defense is part of the client's step
# (`defense=`), so the attacker observes only the gradient of the encoded
# batch, and not the key (partners, coefficients, mask). DLG, built by name
# with this page's budget, attacks it; PSNR is against the private image.

# %%
from gi_lib import data, fl, metrics, models
from gi_lib.attacks import build_attack
from gi_lib.defenses import InstaHide
from gi_lib.params import resolve_device

device = resolve_device(params.device)
info = data.dataset_info(params.dataset)
images, labels, _ = data.sample_victims(data.load_dataset(info.name), 65, params.seed)
true_images, true_labels = images[:1].to(device), labels[:1].to(device)
partners = (images[1:], labels[1:])  # the client's other images
net = models.build_model(params.attack_model, info, seed=params.seed).to(device)
observation = fl.observe_fedsgd(
    net,
    true_images,
    true_labels,
    num_classes=info.num_classes,
    defense=InstaHide(
        params.k, upper=params.upper, pool=partners, center=info.mean, seed=params.seed
    ),
)
attack = build_attack("dlg", max_iterations=params.max_iterations, on_divergence="stop")
reconstruction = attack.reconstruct(observation, seed=params.seed)
psnr = float(metrics.psnr(reconstruction.images, true_images))
print(f"InstaHide k={params.k}: PSNR {psnr:.1f} dB against the private image")

# %% [markdown]
# ## The experiment
#
# The page's driver, `gi_lib.experiments.instahide`, trains the utility model
# without InstaHide, with it and with cross-dataset InstaHide (cached), and
# attacks `num_trials` images this way without a defense, through MixUp of the
# same `k` images and through both InstaHide variants.

# %% tags=["hide-output"]
result = experiment.run(params)

# %% tags=["hide-input"]
glue("instahide_summary", Markdown(experiment.summary_text(result)), display=False)
glue("instahide_accuracy", experiment.accuracy_figure(result), display=False)
glue("instahide_examples", experiment.examples_figure(result), display=False)

# %% [markdown]
# ## Vanilla vs InstaHide training
#
# ```{glue:figure} instahide_accuracy
# :name: fig-instahide-accuracy
#
# Clean test accuracy after vanilla and InstaHide training (this run).
# ```
#
# ## What DLG recovers through InstaHide
#
# ```{glue:figure} instahide_examples
# :name: fig-instahide-examples
#
# The private image, the encodings the client trained on (clipped to [0, 1]
# for display; the sign flips push them outside it) and DLG's reconstruction
# under each setting.
# ```
#
# {glue:md}`instahide_summary`
#
# Even a perfect gradient inversion only returns the encoding; Huang et al.
# (2021) then need Carlini et al.'s decoding attack over many rounds to get
# images back, which this page does not run.

# %%
rows = experiment.rows(result)
rows_frame(rows)

# %% [markdown]
# ## The paper's claims, checked
#
# A claim that a defense lowers the attack's PSNR is judged on the paired
# differences over the same images, attacked with and without it; an accuracy
# claim rests on one training run per model, so comparing two runs gives no
# spread, and the verdict says there are not enough trials.

# %%
claims = experiment.claims(result)
claims_table(claims)

# %% tags=["remove-input"]
page.finish(result, rows, claims)
