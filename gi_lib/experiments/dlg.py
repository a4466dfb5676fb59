"""The DLG notebook's experiment: reconstructions over iterations, success rate."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from gi_lib import plots
from gi_lib.experiments import single_image
from gi_lib.experiments.common import AttackedSample, uses_num_threads
from gi_lib.params import resolve_device
from gi_lib.results import ResultRow

NOTEBOOK = "dlg"


@dataclass(frozen=True, kw_only=True)
class DLGParams(single_image.SingleImageParams):
    """The DLG notebook's parameters (the DLG and iDLG notebooks' shared ones)."""


check = single_image.checker(DLGParams, NOTEBOOK)


NO_PAPER_NUMBER = (
    "DLG shows its reconstructions as figures (Fig. 3) and gives no PSNR or "
    "success rate."
)


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
                None,
                f"{n} images; iDLG's Table 1 reports DLG's label accuracy",
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
