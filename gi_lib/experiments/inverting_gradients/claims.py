"""The Inverting Gradients paper's claims, judged on paired trials of a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gi_lib import data
from gi_lib.experiments.common import AttackedSample
from gi_lib.experiments.inverting_experiments import IGRun, mean_colour_psnr
from gi_lib.experiments.inverting_gradients.report import _mean_colour
from gi_lib.results import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_ENOUGH_TRIALS,
    NOT_TESTED,
    VERDICTS,
    Claim,
    paired_claim,
    untested_claim,
)

ABSTRACT = "Geiping et al., abstract"
TABLE_1 = (
    "Geiping et al., Sec. 4, Table 1 (Euclidean loss + L-BFGS against the "
    "proposed attack, trained and untrained networks; its cells could not be "
    "read here)"
)
WIDTH_SOURCE = (
    'Geiping et al., abstract ("we analyze the effects of architecture"); '
    "the paper's width study itself could not be read here"
)


@dataclass(frozen=True)
class ClaimTrials:
    """The PSNRs (dB) the claims are judged on.

    Within each group, entry ``i`` of every list is the same trial (image,
    seed), so the lists compare as paired trials.

    Attributes:
        table: ``"<network>/<loss>"`` -> PSNR per table image.
        mean_colour: the mean colour's PSNR on each table image.
        widths: ConvNet width -> untrained cosine PSNR per table image.
        fedavg: the multi-step FedAvg setting's PSNR per image set.
        fedavg_mean_colour: the mean colour's PSNR per FedAvg image set.
        fedavg_steps: that setting's local steps.
        batch: ``(size, PSNR, mean colour PSNR)`` of the largest batch, or
            None without a batch of several images.
    """

    table: Mapping[str, Sequence[float]]
    mean_colour: Sequence[float]
    widths: Mapping[int, Sequence[float]]
    fedavg: Sequence[float]
    fedavg_mean_colour: Sequence[float]
    fedavg_steps: int
    batch: tuple[int, float, float] | None


def claim_trials(result: IGRun) -> ClaimTrials:
    """The run's PSNRs, grouped as the claims compare them."""
    info = data.dataset_info(result.params.dataset)

    def psnrs(samples: Sequence[AttackedSample]) -> list[float]:
        return [s.psnr for s in samples]

    fedavg = result.fedavg
    largest = max(result.batches)
    batch = result.batches[largest]
    return ClaimTrials(
        table={key: psnrs(trials) for key, trials in result.table.items()},
        mean_colour=_mean_colour(result.table, info),
        widths={w: psnrs(trials) for w, trials in result.widths.items()},
        fedavg=psnrs(fedavg.trials),
        fedavg_mean_colour=[
            float(mean_colour_psnr(s.true_images, info).mean()) for s in fedavg.trials
        ],
        fedavg_steps=int(fedavg.trial_setting["steps"]),
        batch=(
            (
                largest,
                batch.psnr,
                float(mean_colour_psnr(batch.true_images, info).mean()),
            )
            if largest > 1
            else None
        ),
    )


def judge(trials: ClaimTrials) -> list[Claim]:
    """The paper's claims, each judged on paired trials (at least 3 per verdict)."""
    t = trials.table
    pair = ("cosine + TV", "L2 + L-BFGS")
    out = [
        paired_claim(
            "On a trained network the paper's attack (cosine similarity, TV "
            "prior, signed Adam) reconstructs the image better than DLG's "
            "Euclidean loss with L-BFGS.",
            TABLE_1,
            t["trained/cosine"],
            t["trained/l2"],
            names=pair,
        ),
        paired_claim(
            "On the untrained network, too, the paper's attack beats the "
            "Euclidean loss with L-BFGS.",
            TABLE_1,
            t["untrained/cosine"],
            t["untrained/l2"],
            names=pair,
        ),
        paired_claim(
            "A trained network still leaks its input: the attack on its "
            "gradient recovers more of the image than a guess made without "
            "the update (the data set's mean colour).",
            f'{ABSTRACT} ("possible even for trained deep networks"); {TABLE_1}',
            t["trained/cosine"],
            trials.mean_colour,
            names=("cosine + TV, trained", "mean colour"),
        ),
        paired_claim(
            "The Euclidean loss with L-BFGS succeeds only in contrived settings: "
            "it does worse on a trained network than on an untrained one.",
            f'{ABSTRACT} (earlier attacks succeed "only in contrived '
            f'settings"); {TABLE_1}',
            t["untrained/l2"],
            t["trained/l2"],
            names=("L2 + L-BFGS, untrained", "trained"),
        ),
    ]
    widths = sorted(trials.widths)
    width_claim = "Wider networks leak more: the same attack on the same images "
    if len(widths) < 2:
        out.append(
            untested_claim(
                width_claim + "recovers more from a wider ConvNet.",
                WIDTH_SOURCE,
                f"this run attacks one width ({widths[0]})",
            )
        )
    for narrow, wide in zip(widths, widths[1:], strict=False):
        out.append(
            paired_claim(
                width_claim + f"recovers more from a ConvNet of width {wide} than "
                f"of width {narrow} (untrained).",
                WIDTH_SOURCE,
                trials.widths[wide],
                trials.widths[narrow],
                names=(f"width {wide}", f"width {narrow}"),
            )
        )
    fedavg_claim = (
        "Averaging over several local steps does not protect the client: the "
        "attack on a FedAvg update recovers more than the mean colour"
    )
    fedavg_source = (
        f'{ABSTRACT} ("even averaging gradients over several iterations or '
        "several images does not protect the user's privacy\")"
    )
    if trials.fedavg_steps < 2:
        out.append(
            untested_claim(
                fedavg_claim + ".",
                fedavg_source,
                "no FedAvg setting of this run takes more than one local step",
            )
        )
    else:
        out.append(
            paired_claim(
                fedavg_claim + f" ({trials.fedavg_steps} local steps).",
                fedavg_source,
                trials.fedavg,
                trials.fedavg_mean_colour,
                names=("FedAvg attack", "mean colour"),
            )
        )
    batch_claim = (
        "Averaging over several images does not protect the client: the "
        "attack on one update of a batch recovers more than the mean colour"
    )
    if trials.batch is None:
        out.append(
            untested_claim(
                batch_claim + ".", fedavg_source, "this run attacks no batch of images"
            )
        )
    else:
        size, psnr, colour = trials.batch
        out.append(
            paired_claim(
                batch_claim + f" ({size} images).",
                fedavg_source,
                [psnr],
                [colour],
                names=(f"batch of {size}", "mean colour"),
            )
        )
    return out


def verdicts_text(result: IGRun, checked: Sequence[Claim]) -> str:
    """How many of the claims hold in this run, for the page's prose."""
    p = result.params
    counts = {v: sum(c.verdict == v for c in checked) for v in VERDICTS}
    parts = [f"{counts[HOLDS]} hold", f"{counts[DOES_NOT_HOLD]} do not hold"]
    parts.append(f"{counts[NOT_ENOUGH_TRIALS]} have no verdict")
    if counts[NOT_TESTED]:
        parts.append(f"{counts[NOT_TESTED]} are not tested")
    text = f"Of the {len(checked)} claims checked in this run, " + ", ".join(parts)
    text += "."
    if counts[HOLDS] < len(checked):
        text += (
            f" This run attacks {p.num_trials} images with {p.max_iterations} "
            f"steps on a network at test accuracy {result.trained.test_accuracy:.2f}; "
            "the paper attacks 100 images with 4,800 steps or more on networks "
            "trained to convergence, so a claim without a verdict here is "
            "untested at the paper's scale, not refuted."
        )
    return text


def claims(result: IGRun) -> list[Claim]:
    """The paper's claims with this run's verdicts (:func:`judge`)."""
    return judge(claim_trials(result))
