"""Attacking one image at a time through a defense, as the defense notebooks do.

Each trial draws a victim image, a freshly initialised attacked model (as
DLG's code does) and a fresh defense (seeded per trial), takes the defended
FedSGD update and runs DLG on it. The client's other images (``pool``, the
partners MixUp and InstaHide mix with) are further images of the same split,
never the victim. Attack quality is always measured against the *private*
image, which is what a defense protects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from tqdm import tqdm

from gi_lib import data, fl, metrics, models
from gi_lib.attacks import dlg
from gi_lib.attacks.base import OptimConfig
from gi_lib.defenses.base import Defense

DefenseFactory = Callable[[tuple[torch.Tensor, torch.Tensor], int], Defense]
"""``(pool, seed) -> Defense``: builds a fresh defense for one trial."""

POOL_SIZE = 64


@dataclass
class DefendedTrial:
    """One attacked image under one defense setting."""

    setting: str
    index: int
    true_image: torch.Tensor
    encoded_image: torch.Tensor | None
    image: torch.Tensor
    psnr: float
    ssim: float
    diverged: bool
    seconds: float


def attack_through_defenses(
    settings: Mapping[str, DefenseFactory],
    *,
    dataset: str,
    model: str,
    num_trials: int,
    seed: int,
    device: torch.device,
    max_iterations: int,
    progress: bool = True,
) -> dict[str, list[DefendedTrial]]:
    """DLG on ``num_trials`` images under every defense setting, same seeds.

    Args:
        settings: setting label -> defense factory (``NoDefense`` for the baseline).
        dataset, model: where the victims come from and the attacked model.
        num_trials: victim images, one per update.
        seed: victims, models, defenses and attack initialisation.
        device: where to compute.
        max_iterations: DLG's L-BFGS iterations.
        progress: show a progress bar.
    """
    info = data.dataset_info(dataset)
    images, labels, _ = data.sample_victims(
        data.load_dataset(dataset), num_trials + POOL_SIZE, seed
    )
    pool = (images[num_trials:], labels[num_trials:])
    optim = OptimConfig(max_iterations=max_iterations, on_divergence="stop")
    out: dict[str, list[DefendedTrial]] = {name: [] for name in settings}
    total = num_trials * len(settings)
    with tqdm(total=total, disable=not progress, mininterval=5.0) as bar:
        for i in range(num_trials):
            truth = images[i : i + 1].to(device)
            label = labels[i : i + 1].to(device)
            net = models.build_model(model, info, seed=seed + i).to(device)
            for name, factory in settings.items():
                defense = factory(pool, seed + i)
                step = fl.client_fedsgd(
                    net, truth, label, num_classes=info.num_classes, defense=defense
                )
                observation = fl.observe_round(net, [step])
                start = time.perf_counter()
                result = dlg.reconstruct(
                    observation, dlg.DLGConfig(optim), seed=seed + i
                )
                out[name].append(
                    DefendedTrial(
                        setting=name,
                        index=i,
                        true_image=truth[0].cpu(),
                        encoded_image=step.images[0].cpu() if step.encoded else None,
                        image=result.images[0].cpu(),
                        psnr=float(metrics.psnr(result.images, truth)[0]),
                        ssim=float(metrics.ssim(result.images, truth)[0]),
                        diverged=result.diverged,
                        seconds=time.perf_counter() - start,
                    )
                )
                bar.update(1)
    return out


def mean_psnr(trials: list[DefendedTrial]) -> float:
    """Mean PSNR of a setting's trials."""
    return float(torch.tensor([t.psnr for t in trials]).mean())


def mean_ssim(trials: list[DefendedTrial]) -> float:
    """Mean SSIM of a setting's trials."""
    return float(torch.tensor([t.ssim for t in trials]).mean())


def examples_rows(
    trials: Mapping[str, list[DefendedTrial]], num_shown: int
) -> tuple[list[list[torch.Tensor]], list[str], list[str]]:
    """Image grid: one row per shown victim, the truth then one column per setting."""
    names = list(trials)
    sent = [n for n in names if trials[n][0].encoded_image is not None]
    rows, titles = [], []
    count = min(num_shown, len(trials[names[0]]))
    for i in range(count):
        row = [trials[names[0]][i].true_image]
        row += [trials[n][i].encoded_image.clamp(0, 1) for n in sent]  # type: ignore[union-attr]
        row += [trials[n][i].image for n in names]
        rows.append(row)
        titles.append(f"image {i}")
    columns = ["truth", *(f"{n} (sent)" for n in sent), *names]
    return rows, columns, titles
