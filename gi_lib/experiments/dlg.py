"""The DLG notebook's experiment: reconstructions over iterations, success rate."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from gi_lib import plots
from gi_lib.experiments import single_image
from gi_lib.experiments.attack_claims import labels_right
from gi_lib.experiments.common import AttackedSample, uses_num_threads
from gi_lib.experiments.idlg import DATA_NOTES, PAPER_LABEL_ACCURACY
from gi_lib.params import resolve_device
from gi_lib.results import (
    DOES_NOT_HOLD,
    HOLDS,
    Claim,
    PaperValue,
    ResultRow,
    bound_claim,
    untested_claim,
)

NOTEBOOK = "dlg"


@dataclass(frozen=True, kw_only=True)
class DLGParams(single_image.SingleImageParams):
    """The DLG notebook's parameters (the DLG and iDLG notebooks' shared ones)."""


check = single_image.checker(DLGParams, NOTEBOOK)


NO_PAPER_NUMBER = (
    "DLG shows its reconstructions as figures (Fig. 3) and gives no PSNR or "
    "success rate."
)
DLG_LABELS_SOURCE = "iDLG (Zhao et al.), Table 1, DLG's column (authors' README)"
"""DLG's own paper gives no label accuracy; iDLG's authors measured DLG's, in
DLG's setting (its LeNet, one image, L-BFGS), on 1,000 images per data set."""


@dataclass
class DLGRun:
    """Trials per data set plus what the figures need."""

    params: DLGParams
    device: torch.device
    snapshots: tuple[int, ...]
    trials: dict[str, list[AttackedSample]]

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            name: single_image.summarize(trials, success_psnr=self.params.success_psnr)
            for name, trials in self.trials.items()
        }


@uses_num_threads
def run(params: DLGParams, *, progress: bool = True) -> DLGRun:
    """Attack ``num_trials`` images of each data set with DLG."""
    device = resolve_device(params.device)
    schedule = single_image.snapshot_schedule(params.max_iterations)
    optim = single_image.lbfgs(params, snapshot_iterations=schedule)
    trials = single_image.run_datasets(
        params, ("dlg",), optim, device, progress=progress
    )
    return DLGRun(params=params, device=device, snapshots=schedule, trials=trials)


def iterations_figure(result: DLGRun) -> Figure:
    """The paper's Fig. 3 layout: rows are images, columns are iterations."""
    rows, titles = [], []
    for name, trials in result.trials.items():
        for trial in trials[: result.params.num_shown]:
            rows.append(
                [trial.snapshots[i][0] for i in result.snapshots]
                + [trial.true_images[0]]
            )
            titles.append(f"{name} #{trial.index}")
    columns = [f"iter {i}" for i in result.snapshots] + ["truth"]
    return plots.image_rows(rows, columns, titles)


def psnr_figure(result: DLGRun) -> Figure:
    """PSNR over iterations, one curve per attacked image."""
    series = {
        f"{name} #{t.index}": [(h["iteration"], h["psnr"]) for h in t.history]
        for name, trials in result.trials.items()
        for t in trials
    }
    return plots.curves(
        series,
        xlabel="L-BFGS iteration",
        reference=(result.params.success_psnr, "success threshold"),
    )


def dlg_label_paper_value(dataset: str) -> PaperValue | None:
    """DLG's label accuracy on ``dataset`` as iDLG's Table 1 reports it, cited
    as that table (None where it has no column for the data set)."""
    paper = PAPER_LABEL_ACCURACY.get((dataset, "dlg"))
    if paper is None:
        return None
    return PaperValue(paper.value, DLG_LABELS_SOURCE, paper.confidence)


def rows(result: DLGRun) -> list[ResultRow]:
    """Scorecard rows: our PSNR, SSIM, success rate and label accuracy."""
    out = []
    model = result.params.model
    for name, stats in result.summary().items():
        experiment = f"{name}/{model}/bs1"
        n = int(stats["trials"])
        out += [
            ResultRow.against(
                experiment,
                "psnr",
                stats["psnr_mean"],
                None,
                f"mean over {n} images; {NO_PAPER_NUMBER}",
            ),
            ResultRow.against(
                experiment, "ssim", stats["ssim_mean"], None, f"mean over {n} images"
            ),
            ResultRow.against(
                experiment,
                "success_rate",
                stats["success_rate"],
                None,
                f"share of {n} images above {result.params.success_psnr:g} dB",
            ),
            ResultRow.against(
                experiment,
                "label_accuracy",
                stats["label_accuracy"],
                dlg_label_paper_value(name),
                "; ".join(
                    filter(
                        None,
                        [
                            f"{n} images; the paper value is DLG's label accuracy "
                            "as iDLG's authors measured it, 1,000 images",
                            DATA_NOTES.get(name, ""),
                        ],
                    )
                ),
            ),
        ]
    return out


def summary_text(result: DLGRun) -> str:
    """One sentence per data set with this run's numbers, for the page's prose."""
    parts = []
    for name, stats in result.summary().items():
        parts.append(
            f"on {name}, mean PSNR {stats['psnr_mean']:.1f} dB with "
            f"{100 * stats['success_rate']:.0f}% of {int(stats['trials'])} images "
            f"above {result.params.success_psnr:g} dB and "
            f"{100 * stats['label_accuracy']:.0f}% of labels right"
        )
    return f"In this run ({result.params.profile} profile): " + "; ".join(parts) + "."


def recovered(result: DLGRun, trials: list[AttackedSample]) -> list[float]:
    """Per trial, 1.0 where the reconstruction reached the page's success
    threshold in PSNR, else 0.0."""
    return [1.0 if t.psnr >= result.params.success_psnr else 0.0 for t in trials]


def image_claim(result: DLGRun, name: str, trials: list[AttackedSample]) -> Claim:
    """DLG's image claim on one data set's trials: whether the share of
    images it recovers (PSNR at the page's success threshold or above)
    clears one half."""
    threshold = result.params.success_psnr
    return bound_claim(
        f"From one gradient of the untrained LeNet, DLG recovers the private "
        f"image pixel-wise, on most images ({name}; recovered: {threshold:g} dB "
        f"PSNR or more)",
        "DLG, abstract and Fig. 3 (MNIST, CIFAR-100, SVHN, LFW)",
        recovered(result, trials),
        above=0.5,
        what="image recovered (1 or 0)",
    )


def claims(result: DLGRun) -> list[Claim]:
    """DLG's claims, judged on this run's trials per data set.

    The image claim asks whether the share of images DLG recovers (PSNR at
    the page's success threshold or above) clears one half, the label claim
    whether the share of right labels does: the interval of the mean of the
    trials' 1s and 0s must lie above 0.5. Claims of the paper this page does
    not run are listed as not tested, with why.
    """
    out = []
    for name, trials in result.trials.items():
        out.append(image_claim(result, name, trials))
        out.append(
            bound_claim(
                f"DLG recovers the image's label along with the image, on most "
                f"images ({name})",
                "DLG, Sec. 3 (the dummy label is optimised with the image); "
                "iDLG, Table 1 measures DLG at 79.1-89.9%",
                labels_right(trials),
                above=0.5,
                what="label right per image (1 or 0)",
            )
        )
    out += [
        untested_claim(
            "DLG also recovers batches of up to 8 images from one gradient",
            "DLG, Sec. 4 (batched leakage; the batch table's values were not "
            "found, PAPER_VALUES.md)",
            "this page attacks one image per gradient at every profile; the "
            "Inverting Gradients page attacks batches, with its own attack",
        ),
        untested_claim(
            "Gradient pruning is the most effective defense against DLG",
            "DLG, abstract; Sec. 5",
            "this page attacks undefended gradients; the gradient pruning "
            "page runs DLG against pruned gradients",
        ),
        untested_claim(
            "Gaussian or Laplacian noise on the gradients stops DLG only at a "
            "scale that also costs accuracy",
            "DLG, Sec. 5 (noisy gradients; read in a third-party summary, "
            "PAPER_VALUES.md, label S)",
            "no noise is added on this page, and the paper's noise and "
            "accuracy table was not found (NF), so no scale can be checked",
        ),
    ]
    return out


def claims_text(result: DLGRun) -> str:
    """What the image claim's verdicts rest on, per data set, for the prose."""
    threshold = result.params.success_psnr
    verdicts: dict[str, list[str]] = {}
    parts = []
    for name, trials in result.trials.items():
        claim = image_claim(result, name, trials)
        values = [t.psnr for t in trials]
        failed = [v for v in values if v < threshold]
        found = [v for v in values if v >= threshold]
        part = f"on {name}, {len(found)} of {len(values)} images reached "
        part += (
            f"{threshold:g} dB or more (the lowest of them {min(found):.1f} dB)"
            if found
            else f"{threshold:g} dB"
        )
        if failed:
            part += f" and the other {len(failed)} at most {max(failed):.1f} dB"
        parts.append(part)
        verdicts.setdefault(claim.verdict, []).append(name)
    outcome = []
    for verdict, names in verdicts.items():
        where = " and ".join(names)
        if verdict == HOLDS:
            outcome.append(f"holds on {where}")
        elif verdict == DOES_NOT_HOLD:
            outcome.append(f"does not hold on {where}")
        else:
            outcome.append(
                f"is left open on {where} (with this many images, the interval "
                "of the share recovered reaches below one half)"
            )
    return (
        f"In this run, {'; '.join(parts)}. The image claim "
        + ", and ".join(outcome)
        + "."
    )
