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
# # Inverting Gradients
#
# Geiping, Bauermeister, Dröge and Moeller, *Inverting Gradients - How easy is
# it to break privacy in federated learning?*, NeurIPS 2020.
#
# **Claim.** The magnitude of a gradient says how well the network already
# fits the image; its *direction* says what the image is. Matching the
# direction (cosine similarity) with a total-variation prior recovers images
# from trained as well as untrained networks, deeper and wider ones than DLG
# attacked, from batches of several images, and from FedAvg updates made of
# several local steps:
#
# $$\min_{x \in [0,1]^n} \; 1 - \frac{\langle \nabla_\theta \mathcal{L}(x, y),
#   \nabla_\theta \mathcal{L}(x^*, y) \rangle}{\|\nabla_\theta \mathcal{L}(x, y)\|
#   \, \|\nabla_\theta \mathcal{L}(x^*, y)\|} + \alpha_{TV}\, \mathrm{TV}(x).$$
#
# **Setting** (from the official code): Adam on the *sign* of the image
# gradient, learning rate 0.1 in the normalised image space, cut tenfold at
# 3/8, 5/8 and 7/8 of the iterations, images clamped to the valid pixel range
# after every step, restarts scored by the matching loss. BatchNorm is in
# eval mode for the client and the attacker (running statistics), as in every
# experiment of the paper. The labels are known to the attacker, as in all of
# the paper's scripts (the batch section also reports how many labels the
# last layer's update would give away). The paper uses the ConvNet of width
# 64 and CIFAR ResNets trained for 120 epochs, with 4,800 to 24,000 steps per
# attack on 100 images. The `cpu` profile has minutes on one CPU thread: a
# few images (the claims need at least 3 paired trials), a few hundred
# steps at most, the ConvNet at half the paper's width (a step at width 64
# costs several times as much on a CPU, and the paired trials would not
# fit), and a network trained for one pass over part of CIFAR-10's training
# images. Its PSNRs are therefore far below what the full budget reaches,
# and the claims section says which of the paper's effects show at this
# budget and which do not.
#
# **Threat model.** An honest-but-curious server sees one client's update
# (a gradient, or a FedAvg weight difference with known local learning rate,
# steps and number of images) and the model.

# %% tags=["remove-cell"]
from IPython.display import Markdown
from myst_nb import glue

from gi_lib.experiments import inverting_gradients as experiment
from gi_lib.notebook import Page
from gi_lib.results import claims_table, rows_frame

page = Page(experiment, globals())

# %% tags=["parameters"]
profile = "cpu"
dataset = "cifar10"
model = "convnet32"
num_trials = 4
seed = 0
device = "auto"
num_threads = 1
max_iterations = 160
lr = 0.1
tv_weight = 1e-4
trained_tv_weight = 1e-2
restarts = 1
compile_step = False
lbfgs_iterations = 8
train_epochs = 1
train_images = 3000
train_lr = 0.005
train_batch_size = 32
widths = "16,32"
fedavg_epochs = "1,2"
fedavg_images = "1"
fedavg_lrs = "0.01,0.0001"
fedavg_batch_size = 0
fedavg_iterations = 80
batch_sizes = "1,4"
batch_iterations = 100
num_shown = 3

# %%
params = page.check(globals())

# %% [markdown]
# ## One attack, step by step
#
# One private image, the untrained ConvNet with BatchNorm in eval mode
# (`model_mode="eval"`: the client and the attacker normalise with the running
# statistics), and an attacker who knows the label (`reveal_labels=True`). The
# attack, built by name with this page's step size, budget, restarts and TV
# weight, matches the gradient's direction by signed Adam in the normalised
# image space, inside the box of valid pixels.

# %%
from gi_lib import data, fl, metrics, models
from gi_lib.attacks import build_attack
from gi_lib.params import resolve_device

device = resolve_device(params.device)
info = data.dataset_info(params.dataset)
true_images, true_labels, _ = data.sample_victims(
    data.load_dataset(info.name), 1, params.seed
)
true_images, true_labels = true_images.to(device), true_labels.to(device)
net = models.build_model(params.model, info, seed=params.seed).to(device)
observation = fl.observe_fedsgd(
    net,
    true_images,
    true_labels,
    num_classes=info.num_classes,
    reveal_labels=True,
    model_mode="eval",
)
attack = build_attack(
    "inverting",
    lr=params.lr,
    max_iterations=params.max_iterations,
    restarts=params.restarts,
    tv_weight=params.tv_weight,
    on_divergence="stop",
    compile=params.compile_step,
)
reconstruction = attack.reconstruct(observation, seed=params.seed)
psnr = float(metrics.psnr(reconstruction.images, true_images))
print(f"untrained {params.model}, {params.max_iterations} steps: PSNR {psnr:.1f} dB")

# %% [markdown]
# ## The experiments
#
# The page's driver, `gi_lib.experiments.inverting_gradients`, trains the
# network (cached), then runs the paper's experiments: DLG's L2 attack and this
# one on `num_trials` images of the untrained and the trained network (the
# first untrained image is the one above), this attack on untrained ConvNets
# of other widths, FedAvg updates of several local steps, and batches of
# several images. Image `i` is attacked with the same seed in every setting,
# so settings compare image by image (paired trials).

# %% tags=["hide-output"]
result = experiment.run(params)

# %% tags=["hide-input"]
glue("ig_summary", Markdown(experiment.summary_text(result)), display=False)
glue("ig_network", Markdown(experiment.network_text(result)), display=False)
glue("ig_examples", experiment.examples_figure(result), display=False)
glue("ig_fedavg_images", experiment.fedavg_figure(result), display=False)
glue("ig_batches", experiment.batch_figure(result), display=False)
glue("ig_batch_curve", experiment.batch_curve(result), display=False)
glue("ig_imagenet_note", Markdown(result.imagenet_note), display=False)

# %% [markdown]
# ## Trained and untrained networks, L2 and cosine
#
# The paper compares DLG's attack (squared L2 distance, L-BFGS, no prior,
# no box) with its own on trained and untrained networks. Both attacks start
# from the same images and know the labels; the L2 baseline runs L-BFGS with
# up to 20 loss evaluations per step and stops early when its loss stops
# changing. The last row is the data set's mean colour as a flat image: the
# guess of an attacker who has not seen the update, scored on the same
# images.
#
# {glue:md}`ig_network`
#
# ```{glue:figure} ig_examples
# :name: fig-ig-examples
#
# Victim images (first column) and their reconstructions from one gradient of
# the untrained and the trained network, by DLG's L2 + L-BFGS attack and the
# cosine attack.
# ```

# %%
experiment.table_frame(result)

# %% [markdown]
# ## Wider networks
#
# The same attack, steps and images on untrained ConvNets of several widths
# (the network of the table is one of them). A wider network has more
# parameters, so its gradient holds more equations about the same image.

# %%
experiment.width_frame(result)

# %% [markdown]
# ## FedAvg: several local steps
#
# A FedAvg client trains for some local epochs on its images and sends the
# weight difference. The attack unrolls the same local SGD steps on the dummy
# images (differentiating through all of them) and matches the difference.
# Below, one factor changes at a time from the base setting (first row); the
# last image row attacks the base update as if it were a single gradient.
# The setting with the most local steps is also attacked on `num_trials`
# image sets, for the claim below.

# %%
experiment.fedavg_frame(result)

# %% [markdown]
# ```{glue:figure} ig_fedavg_images
# :name: fig-ig-fedavg
#
# Reconstructions from FedAvg updates (first local image of each setting),
# and from the base update when the local steps are ignored.
# ```
#
# ## Batches of images
#
# One update of several images (distinct labels, as in the paper). The
# reconstructed batch comes in no particular order, so it is matched to the
# true batch by an optimal one-to-one assignment before scoring.
#
# ```{glue:figure} ig_batches
# :name: fig-ig-batches
#
# Reconstructions for each batch size (rows), matched to the true images;
# the last row is the largest true batch.
# ```
#
# ```{glue:figure} ig_batch_curve
# :name: fig-ig-batch-curve
#
# Mean PSNR of the matched reconstructions against the batch size.
# ```
#
# ## ImageNet
#
# {glue:md}`ig_imagenet_note`
#
# ## Paper vs ours
#
# The paper's table values could not be checked against its text here, so the
# paper column is empty; the notes say what each row measures. (The one value
# a third party quotes, Table 1's untrained LeNet, is for a network and a
# budget this page does not run.) LPIPS appears only when its network weights
# are present locally. Compared with the paper, the `cpu` profile runs far
# fewer steps on a narrower ConvNet trained far less, so its absolute PSNRs
# are much lower.

# %%
rows = experiment.rows(result)
rows_frame(rows)

# %% [markdown]
# ## The paper's claims, checked
#
# Each claim compares two settings on the same images with the same attack
# seeds (paired trials). It holds when the 95% interval of the mean paired
# difference in PSNR lies above zero, does not hold when it lies below, and
# otherwise the differences are within the image-to-image spread (not
# enough trials); fewer than 3 trials give no verdict. "Mean colour" is the
# data set's average colour as a flat image: what an attacker guesses
# without the update.

# %%
claims = experiment.claims(result)
claims_table(claims)

# %% tags=["hide-input"]
glue("ig_verdicts", Markdown(experiment.verdicts_text(result, claims)), display=False)

# %% [markdown]
# {glue:md}`ig_verdicts`
#
# {glue:md}`ig_summary`

# %% tags=["remove-input"]
page.finish(result, rows, claims)
