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
# # DP-SGD
#
# Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar and Zhang, *Deep Learning
# with Differential Privacy*, CCS 2016.
#
# **Claim.** Clipping each example's gradient and adding Gaussian noise gives a
# differentially private training run whose (epsilon, delta) the moments
# accountant tracks, at a modest cost in accuracy on MNIST.
#
# **Defense.** Per-example gradients (opacus), each clipped to L2 norm C,
# summed, Gaussian noise of standard deviation sigma C added, divided by the
# batch size (`gi_lib.defenses.dpsgd`). Epsilon comes from opacus's RDP
# accountant for the run's sampling rate and steps (the paper's moments
# accountant is the same analysis), never from a formula here. Opacus cannot
# pass per-example gradients through BatchNorm, so the ConvNet's BatchNorm is
# replaced by GroupNorm for every run on this page, private or not.
#
# **Setting.** The paper trains a PCA-60 + 1,000-unit network on 60,000 MNIST
# images with lots of 600 and C=4; the cpu profile trains a small ConvNet for
# a few epochs on a few thousand images. Attack: DLG on DLG's LeNet (no
# BatchNorm), one image per update, clipped to C and noised with each sigma.
#
# **Threat model.** The attacker sees the model and the noised gradient.

# %% tags=["remove-cell"]
from IPython.display import Markdown
from myst_nb import glue

from gi_lib.experiments import dpsgd as experiment
from gi_lib.notebook import Page
from gi_lib.results import rows_frame

page = Page(experiment, globals())

# %% tags=["parameters"]
profile = "cpu"
dataset = "mnist"
model = "convnet8"
num_trials = 2
seed = 0
device = "auto"
num_threads = 1
attack = "dlg"
attack_model = "lenet"
max_iterations = 100
train_epochs = 2
train_images = 3000
train_lr = 0.05
batch_size = 100
num_shown = 2
noise_multipliers = "0.5,1.0,2.0"
clip_norm = 1.0
delta = 1e-5

# %%
params = page.check(globals())

# %% [markdown]
# ## One attack, step by step
#
# One private image and DLG's LeNet (no BatchNorm). The client clips the
# image's gradient to `clip_norm` and adds Gaussian noise before sending it:
# the defense is part of the client's step (`defense=`), so the attacker
# observes only the noised gradient. DLG, built by name with this page's
# budget, attacks it at the page's first noise multiplier; PSNR is against the
# private image.

# %%
from gi_lib import data, fl, metrics, models
from gi_lib.attacks import build_attack
from gi_lib.defenses import DPSGD
from gi_lib.params import resolve_device

device = resolve_device(params.device)
info = data.dataset_info(params.dataset)
true_images, true_labels, _ = data.sample_victims(
    data.load_dataset(info.name), 1, params.seed
)
true_images, true_labels = true_images.to(device), true_labels.to(device)
net = models.build_model(params.attack_model, info, seed=params.seed).to(device)
noise_multiplier = params.noise_multipliers[0]
observation = fl.observe_fedsgd(
    net,
    true_images,
    true_labels,
    num_classes=info.num_classes,
    defense=DPSGD(
        clip_norm=params.clip_norm, noise_multiplier=noise_multiplier, seed=params.seed
    ),
)
attack = build_attack("dlg", max_iterations=params.max_iterations, on_divergence="stop")
reconstruction = attack.reconstruct(observation, seed=params.seed)
psnr = float(metrics.psnr(reconstruction.images, true_images))
print(f"noise multiplier {noise_multiplier:g}: PSNR {psnr:.1f} dB")

# %% [markdown]
# ## The experiment
#
# The page's driver, `gi_lib.experiments.dpsgd`, trains the utility model
# without and with DP-SGD at each noise multiplier (cached), and attacks
# `num_trials` images this way without a defense and at each multiplier (its
# first image at the first multiplier is the one above).

# %% tags=["hide-output"]
result = experiment.run(params)

# %% tags=["hide-input"]
glue("dpsgd_summary", Markdown(experiment.summary_text(result)), display=False)
glue("dpsgd_tradeoff", experiment.tradeoff_figure(result), display=False)
glue("dpsgd_examples", experiment.examples_figure(result), display=False)

# %% [markdown]
# ## Accuracy against epsilon
#
# ```{glue:figure} dpsgd_tradeoff
# :name: fig-dpsgd-tradeoff
#
# Clean test accuracy of DP-SGD runs against their epsilon (opacus's RDP
# accountant, delta as in the table); the dashed line is the non-private run.
# ```
#
# ## What DLG recovers through the noise
#
# ```{glue:figure} dpsgd_examples
# :name: fig-dpsgd-examples
#
# The private image and DLG's reconstruction from the clipped, noised
# gradient at each noise multiplier.
# ```
#
# {glue:md}`dpsgd_summary`
#
# With one image per update the noise's standard deviation, sigma C, is as
# large as the whole clipped gradient, which is why even small multipliers
# stop DLG here; the accountant's epsilon, by contrast, depends on the
# sampling rate and the number of steps of the training run.

# %%
rows = experiment.rows(result)
rows_frame(rows)

# %% tags=["remove-cell"]
page.finish(result, rows)
