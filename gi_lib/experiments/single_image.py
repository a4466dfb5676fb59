"""Attacking one image at a time with DLG or iDLG, as both papers do."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import torch
from tqdm import tqdm

from gi_lib import data, fl, metrics, models

# Both attacks this module runs by name, imported so that the dependency on
# them is visible (to make, through the import graph).
from gi_lib.attacks import build_attack, dlg, idlg  # noqa: F401
from gi_lib.attacks.base import OptimConfig, Reconstruction

AttackName = Literal["dlg", "idlg"]


@dataclass
class Trial:
    """One attacked image and what came back."""

    dataset: str
    attack: str
    index: int
    true_image: torch.Tensor
    true_label: int
    image: torch.Tensor
    label: int
    psnr: float
    ssim: float
    mse: float
    diverged: bool
    seconds: float
    evaluations: int
    history: list[dict[str, float]] = field(default_factory=list)
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)


def snapshot_schedule(max_iterations: int, count: int = 6) -> tuple[int, ...]:
    """Iterations to show in a figure: 0, a few early ones, and the last."""
    fractions = (0.0, 0.03, 0.1, 0.2, 0.5, 1.0)[:count]
    points = sorted({round(f * max_iterations) for f in fractions} | {max_iterations})
    return tuple(points)


def attack_one(
    attack: AttackName,
    observation: fl.Observation,
    optim: OptimConfig,
    *,
    seed: int,
    truth: torch.Tensor,
) -> Reconstruction:
    """Run DLG or iDLG (any registered attack with an ``optim``) on an observation."""
    return build_attack(attack, optim=optim).reconstruct(
        observation, seed=seed, truth=truth
    )


def run_trials(
    dataset: str,
    attacks: tuple[AttackName, ...],
    *,
    model: str,
    num_trials: int,
    seed: int,
    device: torch.device,
    optim: OptimConfig,
    progress: bool = True,
) -> list[Trial]:
    """Attack ``num_trials`` victim images of ``dataset``, one per update.

    Each trial draws a victim image and a freshly initialised model (as the
    official iDLG code does), takes the client's FedSGD gradient, and runs
    every attack in ``attacks`` on the same observation with the same seed.
    """
    info = data.dataset_info(dataset)
    victims, labels, _ = data.sample_victims(
        data.load_dataset(dataset), num_trials, seed
    )
    trials: list[Trial] = []
    total = num_trials * len(attacks)
    with tqdm(
        total=total, desc=f"{dataset}", disable=not progress, mininterval=5.0
    ) as bar:
        for i in range(num_trials):
            truth = victims[i : i + 1].to(device)
            label = labels[i : i + 1].to(device)
            net = models.build_model(model, info, seed=seed + i).to(device)
            observation = fl.observe_fedsgd(
                net, truth, label, num_classes=info.num_classes
            )
            for attack in attacks:
                start = time.perf_counter()
                result = attack_one(
                    attack, observation, optim, seed=seed + i, truth=truth
                )
                seconds = time.perf_counter() - start
                trials.append(
                    Trial(
                        dataset=dataset,
                        attack=attack,
                        index=i,
                        true_image=truth[0].cpu(),
                        true_label=int(label),
                        image=result.images[0].cpu(),
                        label=int(result.labels[0]),
                        psnr=float(metrics.psnr(result.images, truth)[0]),
                        ssim=float(metrics.ssim(result.images, truth)[0]),
                        mse=float(metrics.mse(result.images, truth)[0]),
                        diverged=result.diverged,
                        seconds=seconds,
                        evaluations=result.evaluations,
                        history=result.history,
                        snapshots={k: v[0] for k, v in result.snapshots.items()},
                    )
                )
                bar.update(1)
    return trials


def idlg_label_accuracy(
    dataset: str, *, model: str, num_images: int, seed: int, device: torch.device
) -> tuple[float, int]:
    """Share of images whose label iDLG's analytic rule recovers.

    Cheap (one gradient per image), so it runs on many more images than the
    full reconstructions; each image gets a freshly initialised model. A data
    set smaller than ``num_images`` (the LFW subset has 200) is used whole.

    Returns:
        ``(accuracy, number of images checked)``.
    """
    info = data.dataset_info(dataset)
    images = data.load_dataset(dataset)
    count = min(num_images, len(images))  # type: ignore[arg-type]
    victims, labels, _ = data.sample_victims(images, count, seed)
    correct = 0
    for i in range(count):
        net = models.build_model(model, info, seed=seed + i).to(device)
        observation = fl.observe_fedsgd(
            net,
            victims[i : i + 1].to(device),
            labels[i : i + 1].to(device),
            num_classes=info.num_classes,
        )
        correct += int(idlg.infer_labels(observation).item() == int(labels[i]))
    return correct / count, count


def summarize(trials: list[Trial], *, success_psnr: float) -> dict[str, float]:
    """Mean and median PSNR, SSIM, success rate and label accuracy of trials."""
    if not trials:
        raise ValueError("no trials to summarize")
    psnrs = torch.tensor([t.psnr for t in trials])
    return {
        "trials": float(len(trials)),
        "psnr_mean": float(psnrs.mean()),
        "psnr_median": float(psnrs.median()),
        "ssim_mean": float(torch.tensor([t.ssim for t in trials]).mean()),
        "mse_mean": float(torch.tensor([t.mse for t in trials]).mean()),
        "success_rate": float((psnrs >= success_psnr).float().mean()),
        "label_accuracy": sum(t.label == t.true_label for t in trials) / len(trials),
        "diverged": float(sum(t.diverged for t in trials)),
        "seconds_mean": float(torch.tensor([t.seconds for t in trials]).mean()),
    }
