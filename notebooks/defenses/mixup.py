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
# # MixUp as a defense
#
# Zhang, Cisse, Dauphin and Lopez-Paz, *mixup: Beyond Empirical Risk
# Minimization*, ICLR 2018; as a federated defense in Huang et al., NeurIPS 2021.
#
# **Claim.** Training on convex combinations of pairs of images and of their
# labels, with the weight drawn from Beta(alpha, alpha), generalises better
# than plain empirical risk minimisation (ERM). As a defense, the client only
# ever sends gradients of mixed images, so an attacker who inverts the
# gradient recovers a mixture, not the private image.
#
# **Setting.** Utility: the ConvNet trained with ERM and with MixUp (k=2,
# alpha=1, partners from the same batch, as the official code does), tested on
# clean images. The paper's PreAct ResNet-18 for 200 epochs on all of
# CIFAR-10 is the paper profile's job; the cpu profile trains a small ConvNet
# for a few epochs on a few thousand images and says so in the table. Attack:
# DLG on DLG's LeNet, one image per update, with no defense, MixUp of two
# images and MixUp of four images with coefficients at most 0.65 (Huang et
# al.'s setting); PSNR is measured against the private image.
#
# **Threat model.** The attacker sees the model and the gradient of the mixed
# batch; it does not know the partners or the coefficients.

# %% tags=["remove-cell"]
import time

from IPython.display import Markdown
from myst_nb import glue

from gi_lib.experiments import mixup as experiment
from gi_lib.params import new_names
from gi_lib.results import rows_frame, write_results

_baseline = set(globals())

# %% tags=["parameters"]
profile = "cpu"
dataset = "cifar10"
model = "convnet8"
num_trials = 2
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
alpha = 1.0

# %% tags=["remove-cell"]
params = experiment.check(new_names(globals(), _baseline))
_start = time.perf_counter()
result = experiment.run(params)
glue("mixup_summary", Markdown(experiment.summary_text(result)), display=False)
glue("mixup_accuracy", experiment.accuracy_figure(result), display=False)
glue("mixup_examples", experiment.examples_figure(result), display=False)

# %% [markdown]
# ## ERM vs MixUp
#
# ```{glue:figure} mixup_accuracy
# :name: fig-mixup-accuracy
#
# Clean test accuracy after training with ERM and with MixUp (this run; the
# paper's values are not entered, see the table's notes).
# ```
#
# ## What DLG recovers through MixUp
#
# ```{glue:figure} mixup_examples
# :name: fig-mixup-examples
#
# The private image, the mixed images the client actually trained on, and
# DLG's reconstruction under each setting.
# ```
#
# {glue:md}`mixup_summary`
#
# A short CPU run is far from the paper's 200 epochs, where MixUp's
# regularisation pays off; at a few epochs MixUp usually trails ERM. DLG
# recovers the *mixture* the client trained on, so its PSNR against the
# private image falls with the share of the other images in the mixture.

# %%
rows = experiment.rows(result)
rows_frame(rows)

# %% tags=["remove-cell"]
write_results(
    experiment.NOTEBOOK,
    profile=profile,
    parameters=params,
    rows=rows,
    wall_seconds=time.perf_counter() - _start,
    device=str(result.device),
)
