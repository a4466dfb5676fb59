"""What the experiments share: the CPU threads a run uses, the declarations
of parameters that several experiments take, and one record and one score
for every attacked image or batch."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from threadpoolctl import threadpool_limits

from gi_lib import metrics
from gi_lib.attacks.base import Reconstruction
from gi_lib.params import ExperimentParams, ParameterError, param
from gi_lib.results import ResultRow

R = TypeVar("R")

MAX_MIXED = 8
"""The most images MixUp and InstaHide mix in these experiments."""


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Let torch, and numpy's BLAS, use ``count`` CPU threads inside the block
    (restored afterwards).

    numpy's BLAS (OpenBLAS) ignores torch's setting and starts a thread per
    core; ``threadpoolctl`` limits it too, so that a page's ``num_threads``
    holds for numpy's products (the encrypted-aggregation pages' field and
    lattice arithmetic) and a party timed with ``time.process_time`` is not
    charged for BLAS threads spinning on a busy machine.

    Every notebook's default is one thread: it keeps CPU runs repeatable, and
    LeNet-sized layers are too small for intra-op parallelism to pay; on a
    busy machine torch's threads wait on each other (a DLG step measured 28
    times slower with two threads than with one on a loaded 2-core machine).

    Raises:
        ParameterError: ``count`` is below 1.
    """
    if count < 1:
        raise ParameterError(f"num_threads must be at least 1, got {count}.")
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with threadpool_limits(limits=count, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(previous)


def uses_num_threads(run: Callable[..., R]) -> Callable[..., R]:
    """Run an experiment's ``run(params, ...)`` on ``params.num_threads`` threads.

    The results file records the same value (``parameters.num_threads``).
    """

    @functools.wraps(run)
    def wrapper(params: ExperimentParams, *args: Any, **kwargs: Any) -> R:
        with torch_threads(params.num_threads):
            return run(params, *args, **kwargs)

    return wrapper


def threads_text(count: int) -> str:
    """``one CPU thread`` or ``4 CPU threads``, for notes beside timings."""
    return "one CPU thread" if count == 1 else f"{count} CPU threads"


def ratio_param(help: str) -> Any:
    """A gradient pruning ratio (or a list of them): the share of entries
    zeroed, in [0, 1]."""
    return param(help, minimum=0.0, maximum=1.0)


def mixed_param(help: str) -> Any:
    """How many images MixUp or InstaHide mix into one (2 to :data:`MAX_MIXED`)."""
    return param(help, minimum=2, maximum=MAX_MIXED)


def upper_param(help: str = "largest coefficient c_2") -> Any:
    """MixUp's and InstaHide's bound on each mixing coefficient, in (0, 1].

    Whether ``k`` coefficients summing to one fit under it depends on ``k``:
    check that with :func:`check_upper`.
    """
    return param(help, above=0.0, maximum=1.0)


def check_upper(upper: float, **counts: int) -> None:
    """Check ``upper >= 1/k`` for each mixed-image count, given by field name.

    Example: ``check_upper(params.upper, k=params.k)``.

    Raises:
        ParameterError: ``k`` coefficients summing to one cannot all stay at
            or below ``upper``.
    """
    for name, k in counts.items():
        if upper < 1 / k:
            raise ParameterError(
                f"upper = {upper:g} is below 1/{name} = {1 / k:.3f}: {k} "
                "coefficients summing to 1 cannot all stay at or below it; "
                f"raise upper or lower {name}."
            )


# ---------------------------------------------------------------------------
# One record of an attacked sample and one way to score it
# ---------------------------------------------------------------------------

PAPER_NUMBERS_UNREAD = (
    "no paper value: the paper's numbers could not be read from the sources "
    "available here, so none is cited"
)
"""The note of a row whose paper value is missing because its source was not
available to this build (never a number taken from memory)."""

LPIPS_MIN_SIZE = 32
"""Smallest image side LPIPS's AlexNet backbone takes (MNIST's 28 pixels
shrink to nothing before its last layers)."""


@dataclass(frozen=True)
class Score:
    """Per-image scores of a reconstruction, matched one-to-one to the truth.

    Attributes:
        order: ``reconstruction[order][i]`` is the one scored against ``truth[i]``.
        psnr: PSNR in dB per true image, ``(N,)``.
        ssim: SSIM per true image.
        mse: mean squared error per true image.
        lpips: LPIPS per true image, or None where it cannot run (no local
            weights, or images under :data:`LPIPS_MIN_SIZE` pixels).
    """

    order: torch.Tensor
    psnr: torch.Tensor
    ssim: torch.Tensor
    mse: torch.Tensor
    lpips: torch.Tensor | None


def score(
    reconstructed: torch.Tensor, truth: torch.Tensor, *, match: bool = True
) -> Score:
    """Score reconstructed images against the true ones, on the CPU.

    A batch comes back in no particular order, so by default each true image
    is scored against the reconstruction a one-to-one assignment gives it
    (:func:`gi_lib.metrics.best_matching`), never each against its best.

    Args:
        reconstructed: the attack's images ``(N, C, H, W)`` in [0, 1].
        truth: the client's private images, same shape.
        match: match before scoring; False where the attack knows which
            reconstruction is which sample (CAFE's sample indices).
    """
    reconstructed, truth = reconstructed.detach().cpu(), truth.detach().cpu()
    count = truth.shape[0]
    order = (
        metrics.best_matching(reconstructed, truth)
        if match and count > 1
        else torch.arange(count)
    )
    matched = reconstructed[order]
    small = min(truth.shape[-2:]) < LPIPS_MIN_SIZE
    return Score(
        order=order,
        psnr=metrics.psnr(matched, truth),
        ssim=metrics.ssim(matched, truth),
        mse=metrics.mse(matched, truth),
        lpips=None if small else metrics.lpips(matched, truth),
    )


@dataclass
class AttackedSample:
    """One attacked image (or batch): what was attacked, what came back, its score.

    Every experiment records its attacks in this one type; a paper that
    reports more (R-GAP's layer solves, CAFE's step errors) wraps it.

    Attributes:
        setting: what was attacked: the attack, defense or network, as the
            experiment labels it.
        index: which victim image or batch (the trial).
        true_images: the client's private images ``(N, C, H, W)``, CPU.
        images: the reconstruction, matched to ``true_images`` (``score.order``).
        score: per-image scores (:func:`score`).
        seconds: the attack's wall time.
        sent_images: what the client trained on when a defense's encoding
            replaced its images (MixUp, InstaHide), else None.
        labels: the attack's labels in the matched order, when it returns any.
        true_labels: the labels the client trained on, when recorded.
        diverged: the attack stopped on a non-finite loss.
        evaluations: loss evaluations the attack spent.
        history: the attack's per-iteration records.
        snapshots: iteration -> images then, in the matched order.
    """

    setting: str
    index: int
    true_images: torch.Tensor
    images: torch.Tensor
    score: Score
    seconds: float
    sent_images: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    true_labels: torch.Tensor | None = None
    diverged: bool = False
    evaluations: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def scored(
        cls,
        reconstruction: Reconstruction,
        truth: torch.Tensor,
        *,
        seconds: float,
        setting: str = "",
        index: int = 0,
        sent_images: torch.Tensor | None = None,
        true_labels: torch.Tensor | None = None,
        match: bool = True,
    ) -> AttackedSample:
        """The record of ``reconstruction`` scored against ``truth`` (:func:`score`)."""
        scores = score(reconstruction.images, truth, match=match)
        order = scores.order
        labels = reconstruction.labels
        return cls(
            setting=setting,
            index=index,
            true_images=truth.detach().cpu(),
            images=reconstruction.images.detach().cpu()[order],
            score=scores,
            seconds=seconds,
            sent_images=None if sent_images is None else sent_images.detach().cpu(),
            labels=None if labels is None else labels.detach().cpu()[order],
            true_labels=None if true_labels is None else true_labels.detach().cpu(),
            diverged=reconstruction.diverged,
            evaluations=reconstruction.evaluations,
            history=reconstruction.history,
            snapshots={
                k: v.detach().cpu()[order] for k, v in reconstruction.snapshots.items()
            },
        )

    @property
    def psnr(self) -> float:
        """Mean PSNR over the sample's images (dB)."""
        return float(self.score.psnr.mean())

    @property
    def ssim(self) -> float:
        """Mean SSIM over the sample's images."""
        return float(self.score.ssim.mean())

    @property
    def mse(self) -> float:
        """Mean squared error over the sample's images."""
        return float(self.score.mse.mean())

    @property
    def lpips(self) -> float | None:
        """Mean LPIPS over the sample's images, or None where it cannot run."""
        return None if self.score.lpips is None else float(self.score.lpips.mean())

    @property
    def label_accuracy(self) -> float:
        """Share of the true labels the attack recovered (as multisets).

        Raises:
            ValueError: the attack returned no labels or none were recorded.
        """
        if self.labels is None or self.true_labels is None:
            raise ValueError(f"{self.setting!r} has no labels to compare.")
        return metrics.label_accuracy(self.labels, self.true_labels)


def attack_and_score(
    reconstruct: Callable[[], Reconstruction],
    truth: torch.Tensor,
    **record: Any,
) -> AttackedSample:
    """Run ``reconstruct()``, time it, and score its result against ``truth``.

    Args:
        reconstruct: the attack call, e.g.
            ``lambda: attack.reconstruct(observation, seed=seed)``.
        truth: the client's private images.
        record: further fields of :meth:`AttackedSample.scored` (``setting``,
            ``index``, ``sent_images``, ``true_labels``, ``match``).
    """
    start = time.perf_counter()
    result = reconstruct()
    seconds = time.perf_counter() - start
    return AttackedSample.scored(result, truth, seconds=seconds, **record)


def mean(values: Iterable[float]) -> float:
    """Mean of plain numbers, summed in float64 (NaN for none)."""
    return float(torch.tensor(list(values), dtype=torch.float64).mean())


def mean_of(samples: Iterable[AttackedSample], metric: str) -> float:
    """Mean of a metric every sample has (``"psnr"``, ``"ssim"``, ``"mse"``,
    ``"seconds"``) over attacked samples."""
    return mean(getattr(s, metric) for s in samples)


def mean_lpips(samples: Iterable[AttackedSample]) -> float | None:
    """Mean LPIPS over the samples that have it; None when none has (no
    local weights, or images too small)."""
    values = [s.lpips for s in samples if s.lpips is not None]
    return mean(values) if values else None


def score_rows(
    experiment: str, samples: Sequence[AttackedSample], note: str
) -> list[ResultRow]:
    """Results rows of attacked samples: mean PSNR (with ``note``), SSIM and,
    where it could run, LPIPS."""
    also = f"mean over the same {len(samples)} as the PSNR"
    rows = [
        ResultRow.against(experiment, "psnr", mean_of(samples, "psnr"), None, note),
        ResultRow.against(experiment, "ssim", mean_of(samples, "ssim"), None, also),
    ]
    lpips = mean_lpips(samples)
    if lpips is not None:
        rows.append(ResultRow.against(experiment, "lpips", lpips, None, also))
    return rows
