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
# # What encrypted aggregation still leaks
#
# The encrypted defenses of this book (SecAgg and SecAgg+, LightSecAgg,
# FastSecAgg, homomorphic encryption) promise that the server learns only
# the sum of the surviving clients' updates. This page asks the next
# question: how much does that sum, or a party that does not play by the
# rules, still give away? It is the book's own evaluation, not a paper's
# replication: each attack below comes from its paper, but the setting and
# the numbers are ours.
#
# **Setting.** CIFAR-10 images, one image per client; a small BatchNorm
# ConvNet (`smallconv16`, eval mode) for the optimisation attacks, an FC-2
# network (3072 -> hidden -> 10) for the Cocktail Party Attack. The
# protocols are the book's own implementations (`gi_lib.defenses`), used
# through their public interface only. Because all the masking protocols
# decode to the same sum, the attacks on the sum run once, on that sum.
#
# **Threat models.** From "nobody misbehaves" (an honest-but-curious server
# that keeps the sum) to a server that sends a modified model, sends
# different clients different models, chooses who takes part in which round,
# or colludes with clients; and, for homomorphic encryption, a participant.

# %% tags=["remove-cell"]
from IPython.display import Markdown
from myst_nb import glue

from gi_lib.experiments import aggregation_leakage as experiment
from gi_lib.notebook import Page
from gi_lib.results import claims_table, rows_frame

page = Page(experiment, globals())

# %% tags=["parameters"]
profile = "cpu"
dataset = "cifar10"
model = "smallconv16"
num_trials = 3
seed = 0
device = "auto"
num_threads = 1
max_iterations = 500
tv_weight = 0.1
client_counts = "1,2,4,8"
label_client_counts = "1,2,4,8,16,32,64"
label_trials = 5
cpa_sizes = "8,16,32,64"
cpa_hidden = 256
cpa_iterations = 500
recovered_psnr = 20.0
imprint_sizes = "1,8,32,64,128"
num_bins = 64
exact_psnr = 40.0
secure_clients = 4
he_backend = "lwe"

# %%
params = page.check(globals())

# %% [markdown]
# ## One round through SecAgg, attacked
#
# Four clients, one CIFAR-10 image each, send their share of the mean FedSGD
# gradient through SecAgg. The server decodes client 0's masked upload as if
# it were an update and hands it to Inverting Gradients, built by name with
# this page's budget; the same attack runs on client 0's plaintext update,
# which is what the server would see without SecAgg.

# %%
from gi_lib import data, fl, metrics, models
from gi_lib.attacks import build_attack
from gi_lib.defenses.secagg import SecAgg
from gi_lib.experiments.secagg import masked_upload, secure_round
from gi_lib.params import resolve_device

device = resolve_device(params.device)
info = data.dataset_info(params.dataset)
images, labels, _ = data.sample_victims(
    data.load_dataset(info.name), params.secure_clients, params.seed
)
images, labels = images.to(device), labels.to(device)
net = models.build_model(params.model, info, seed=params.seed).to(device)
protocol = SecAgg(bits=64, frac_bits=24, clip=8.0, seed=params.seed)
steps, secure = secure_round(net, images, labels, info.num_classes, protocol)
plain = fl.observe_fedsgd(
    net, images[:1], labels[:1], num_classes=info.num_classes, reveal_labels=False
)
masked = fl.observe_round(
    net, steps[:1], gradients=[g.to(device) for g in masked_upload(secure, protocol, 0)]
)
attack = build_attack(
    "inverting",
    max_iterations=params.max_iterations,
    tv_weight=params.tv_weight,
    on_divergence="stop",
)
psnr_plain = float(
    metrics.psnr(attack.reconstruct(plain, seed=params.seed).images, images[:1])
)
psnr_masked = float(
    metrics.psnr(attack.reconstruct(masked, seed=params.seed).images, images[:1])
)
print(
    f"PSNR from the plaintext update {psnr_plain:.1f} dB, "
    f"from the masked upload {psnr_masked:.1f} dB"
)

# %% [markdown]
# ## The experiment
#
# What the driver runs, section by section (sections 1, 3 and 6 over
# `num_trials` paired trials: trial t draws its clients' images and seeds the
# attack with `seed + t`; the exact sections run once):
#
# 1. the masked upload above, beside the plaintext update and an unrelated
#    image of the data set;
# 2. the round's label counts from the summed last-layer bias gradient
#    (Wainakh et al., PETS 2022: the bias gradient of cross-entropy is the
#    mean of softmax minus one-hot, so the counts are the round's size times
#    the mean softmax minus that gradient; the server estimates the mean
#    softmax on noise inputs), `label_trials` rounds per number of clients;
# 3. Inverting Gradients on the aggregate of N one-image clients;
# 4. the Cocktail Party Attack (Kariyappa et al., ICML 2023) and FastICA
#    (scikit-learn) on the FC-2 network's first-layer gradient summed over
#    `cpa_sizes` samples; an image counts as recovered when its one-to-one
#    match scores at least `recovered_psnr` dB up to the sign and scale blind
#    source separation cannot fix;
# 5. Robbing the Fed (Fowl et al., ICLR 2022): the server prepends an imprint
#    block of `num_bins` brightness bins; every sample alone in its bin is read
#    off the sum, exactly (at least `exact_psnr` dB), on the plaintext sum and
#    on SecAgg's decoded sum;
# 6. model inconsistency (Pasquini et al., CCS 2022): every client but the
#    target gets a model whose last ReLU layer is dead; the SecAgg sum then
#    equals the target's update on every other parameter. The server inverts
#    it with Inverting Gradients on the ConvNet, beside the same attack on
#    the honest round's sum; on the FC-2 network, whose first layer is fully
#    connected with a bias, it reads the image off exactly (row r of the
#    weight update is the bias update's entry r times the image), beside the
#    same formula on the honest sum (a weighted mean of the images). Since
#    every masking protocol decodes to the plaintext sum (up to its
#    fixed-point rounding), the honest sum's inversion is section 3's run at
#    N = `secure_clients` when that N is tried, and client 0's plaintext
#    update of section 1 is its N = 1 run;
# 7. the threshold: the server replays SecAgg's unmasking round as if the
#    target had dropped, asking only colluding clients (a colluder answers a
#    second request that contradicts the first; an honest client refuses);
#    the same for LightSecAgg, with the rank of what its colluders learn of a
#    mask; and the difference of two rounds whose client sets differ by one
#    (Lam et al., ICML 2021);
# 8. homomorphic encryption (Phong et al.'s asynchronous system, LWE): the
#    server's view, and participant 0's two decryptions around participant
#    1's upload, inverted.

# %% tags=["hide-output"]
result = experiment.run(params)

# %% tags=["hide-input"]
glue("leak_summary", Markdown(experiment.summary_text(result)), display=False)
glue("leak_curves", experiment.curves_figure(result), display=False)
glue("leak_examples", experiment.examples_figure(result), display=False)

# %% [markdown]
# ```{glue:figure} leak_curves
# :name: fig-leak-curves
#
# Left: Inverting Gradients on the aggregate of N one-image clients, mean and
# standard deviation over the trials (the dotted line is an unrelated image's
# mean score). Middle: the fraction of the
# summed images recovered by the Cocktail Party Attack and by FastICA.
# Right: the fraction Robbing the Fed recovers exactly, beside the expected
# fraction of samples alone in their bin.
# ```
#
# ```{glue:figure} leak_examples
# :name: fig-leak-examples
#
# Client 0's image (first trial); Inverting Gradients on its plaintext
# update, on its masked upload, and on the update model inconsistency
# isolates from the SecAgg sum; the image read exactly off the isolated
# first-layer update of the FC-2 network; an unrelated image.
# ```
#
# {glue:md}`leak_summary`
#
# ## Who must misbehave, and what it buys
#
# The table gathers every attack of the page: who has to depart from the
# protocol, what the attack recovers, which of the book's protocols it works
# against, and this run's numbers.

# %% tags=["hide-input"]
experiment.leak_table(result)

# %% [markdown]
# ## This run's numbers
#
# No paper prints these numbers in this setting, so the rows carry ours only.

# %%
rows = experiment.rows(result)
rows_frame(rows)

# %% [markdown]
# ## The paper's claims, checked
#
# The PSNR claims compare two settings on the same trials (same images, same
# attack seed) with `paired_claim`: a claim holds when the confidence interval
# of the mean paired difference clears zero, which needs at least three
# trials. The exact claims (integers equal, a threshold crossed or not) are
# judged by `bound_claim` on their count.

# %%
claims = experiment.claims(result)
claims_table(claims)

# %% tags=["remove-input"]
page.finish(result, rows, claims)
