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
# # Sweeping a notebook over seeds with Dask
#
# A page of this book's own. Every page of the book runs with the parameters
# of its profile; a study reruns a page over many seeds, models or defense
# settings. `python -m gi_lib.sweep` runs one notebook once per point of a
# grid, each point as an ordinary run of the book's runner (the profile's
# parameters, then the point's, checked against the parameters cell; the
# executed notebook and its results file written atomically), as tasks of a
# [Dask](https://distributed.dask.org) cluster:
#
# ```bash
# python -m gi_lib.sweep notebooks/attacks/dlg.py --profile cpu \
#     --grid seed=0,1,2,3,4,5,6,7 --grid max_iterations=100,300 \
#     --output _build/sweeps/dlg
# make sweep NOTEBOOK=notebooks/attacks/dlg.py GRID="seed=0,1,2,3" PROFILE=smoke
# ```
#
# By default the cluster is local, one single-threaded worker per CPU core
# (`--workers N` to choose); `--scheduler tcp://host:8786` sends the points to
# an existing Dask scheduler instead, so the same command fans out over a
# lab's machines, and on SLURM `dask-jobqueue`'s `SLURMCluster` starts the
# workers as batch jobs (the module's docstring shows how). A point whose
# notebook and results file exist is done, and a rerun skips it; a failed
# point is reported with its parameters and the others go on. The results of
# every point are gathered into one table (`results.csv`) and one figure.
#
# This page sweeps the DLG page over a few seeds with points of a small
# profile (seconds each): what it shows is the engine, not DLG's numbers,
# which the DLG page itself reports.

# %% tags=["remove-cell"]
from IPython.display import Markdown
from myst_nb import glue

from gi_lib.experiments import dask_sweep as experiment
from gi_lib.notebook import Page
from gi_lib.results import claims_table, rows_frame

page = Page(experiment, globals())

# %% tags=["parameters"]
profile = "cpu"
dataset = "mnist"
model = "lenet"
num_trials = 1
seed = 0
device = "auto"
num_threads = 1
seeds = "0,1,2,3"
sweep_profile = "smoke"
max_iterations = 4
lr = 1.0
workers = 2
demo_failure = True

# %%
params = page.check(globals())

# %% [markdown]
# ## One point, by hand
#
# Each point of the sweep is the DLG page run with one seed: a freshly
# initialised LeNet, one private image, one client gradient observed without
# its label (`reveal_labels=False`), and DLG, built by name, with the
# smoke-sized budget of the points. Here is what the point of the first seed
# computes, in this kernel.

# %%
from gi_lib import data, fl, metrics, models
from gi_lib.attacks import build_attack

info = data.dataset_info(params.dataset)
images, labels, _ = data.sample_victims(
    data.load_dataset(info.name), 1, params.seeds[0]
)
net = models.build_model(params.model, info, seed=params.seeds[0])
observation = fl.observe_fedsgd(
    net, images, labels, num_classes=info.num_classes, reveal_labels=False
)
attack = build_attack(
    "dlg", lr=params.lr, max_iterations=params.max_iterations, on_divergence="stop"
)
reconstruction = attack.reconstruct(observation, seed=params.seeds[0])
psnr = float(metrics.psnr(reconstruction.images, images))
print(f"seed {params.seeds[0]}: PSNR {psnr:.1f} dB")

# %% [markdown]
# ## The sweep
#
# The page's driver, `gi_lib.experiments.dask_sweep`, starts a local cluster
# of `workers` processes and runs the DLG notebook once per seed under the
# `sweep_profile` profile; then it runs the same sweep again, which finds
# every point done; then (with `demo_failure`) a sweep over two DLG step
# sizes, one of them invalid (negative).

# %% tags=["hide-output"]
result = experiment.run(params)

# %% tags=["hide-input"]
glue("sweep_summary", Markdown(experiment.summary_text(result)), display=False)
glue("sweep_failure", Markdown(experiment.failure_text(result)), display=False)
glue("sweep_psnr", experiment.psnr_figure(result), display=False)

# %% [markdown]
# {glue:md}`sweep_summary`
#
# The gathered table holds one row per results row of every point, with the
# point's swept values:

# %%
result.table

# %% [markdown]
# ```{glue:figure} sweep_psnr
# :name: fig-sweep-psnr
#
# DLG's PSNR per data set over the swept seeds: each seed's point and the
# mean ± one standard deviation. The points ran a few DLG iterations only,
# so the values are those of an unfinished attack.
# ```
#
# The mean and spread over the seeds, per data set:

# %%
experiment.summary_frame(result)

# %% [markdown]
# ## A failed point
#
# What the failing sweep reported: the invalid point by its parameters, with
# the notebook's error, while the valid point ran.
#
# {glue:md}`sweep_failure`

# %% [markdown]
# ## Numbers
#
# The DLG numbers of a smoke-sized point say nothing about DLG (see its own
# page); they are here to show the table a sweep produces.

# %%
rows = experiment.rows(result)
rows_frame(rows)

# %% [markdown]
# ## The engine's promises, checked
#
# Each is one measurement of this run, judged by its side of the bound.

# %%
claims = experiment.claims(result)
claims_table(claims)

# %% tags=["remove-input"]
page.finish(result, rows, claims)
