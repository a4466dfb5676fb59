"""Inverting Gradients (Geiping et al., NeurIPS 2020), the experiments.

1. Trained vs untrained network, L2 + L-BFGS (DLG-style) vs cosine + signed
   Adam + TV (the paper's attack), PSNR per victim image; the same images
   and seeds in every cell, so the cells compare as paired trials. The same
   attack on untrained ConvNets of other widths, on the same images.
2. FedAvg: PSNR as the client's local epochs, number of local images and
   local learning rate vary (one factor at a time around a base setting),
   the same base update attacked as if it were a gradient, and the setting
   with the most local steps repeated on ``num_trials`` image sets.
3. Batch size: reconstruction quality as images per update grow.
4. An ImageNet-size example when a local ImageNet copy exists
   (:func:`gi_lib.data.load_dataset`).

Every PSNR can be read against the data set's mean colour: the flat image
an attacker would guess without the update (:func:`mean_colour_psnr`).

Every attack here knows the labels (all of the paper's experiments pass the
true labels); BatchNorm is in eval mode throughout. The notebook's figures,
tables and rows are in :mod:`gi_lib.experiments.inverting_gradients`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from functools import partial

import torch

from gi_lib import data, fl, metrics, models, training
from gi_lib.attacks import inverting
from gi_lib.attacks.base import OptimConfig, infer_labels
from gi_lib.experiments.common import AttackedSample, attack_and_score
from gi_lib.params import ExperimentParams, ParameterError, param

CONVNET_WIDTHS = (8, 16, 32, 64)
"""The ConvNet widths :mod:`gi_lib.models` registers (``convnet<w>``)."""

FEDAVG_SEED_STRIDE = 10
"""FedAvg trial ``t`` draws its images with seed ``seed + 1 + 10 t`` (trial 0
is the settings table's image set; the batch experiment uses ``seed + 2``)."""


@dataclass(frozen=True, kw_only=True)
class IGParams(ExperimentParams):
    """The Inverting Gradients notebook's parameters."""

    max_iterations: int = param(
        "signed-Adam steps per attack (paper code: 4,800-24,000)", minimum=1
    )
    lr: float = param("Adam step size, normalised space (0.1)", minimum=1e-6)
    tv_weight: float = param("total-variation weight (untrained networks)", minimum=0)
    trained_tv_weight: float = param(
        "total-variation weight on the trained network (official notebooks: "
        "1e-2 to 1e-1 on trained networks)",
        minimum=0,
    )
    restarts: int = param("restarts per attack, best by loss", minimum=1)
    compile_step: bool = param(
        "compile the matching step (torch.compile): minutes up front, then "
        "faster steps; pays on long runs (make bench prints the break-even)"
    )
    lbfgs_iterations: int = param(
        "L-BFGS steps of the L2 baseline (20 evaluations each)", minimum=1
    )
    train_epochs: int = param("epochs for the trained network", minimum=1)
    train_images: int = param("training images (0: all)", minimum=0)
    train_lr: float = param("training learning rate (paper: 0.1)", minimum=1e-6)
    train_batch_size: int = param("training mini-batch size (paper: 128)", minimum=1)
    widths: tuple[int, ...] = param(
        "ConvNet widths attacked untrained on the table's images (paper: 64)",
        minimum=1,
        unique=True,
    )
    fedavg_epochs: tuple[int, ...] = param("local epochs; first is base", minimum=1)
    fedavg_images: tuple[int, ...] = param("local image counts", minimum=1)
    fedavg_lrs: tuple[float, ...] = param("local learning rates", above=0)
    fedavg_batch_size: int = param(
        "local mini-batch size (0: the whole local batch)", minimum=0
    )
    fedavg_iterations: int = param("attack steps per FedAvg attack", minimum=1)
    batch_sizes: tuple[int, ...] = param("images per update", minimum=1)
    batch_iterations: int = param("attack steps per batch attack", minimum=1)
    num_shown: int = param("victim images shown in the figure", minimum=1)


def _config(
    params: IGParams, iterations: int, tv_weight: float | None = None
) -> inverting.InvertingConfig:
    return inverting.tv_config(
        tv_weight=params.tv_weight if tv_weight is None else tv_weight,
        lr=params.lr,
        max_iterations=iterations,
        restarts=params.restarts,
        on_divergence="stop",
        compile=params.compile_step,
    )


def convnet_name(width: int) -> str:
    """The model name of the ConvNet of ``width`` (``convnet`` is width 64)."""
    if width not in CONVNET_WIDTHS:
        raise ParameterError(
            f"No ConvNet of width {width}; gi_lib.models registers widths "
            f"{', '.join(map(str, CONVNET_WIDTHS))}."
        )
    return f"convnet{width}"


def convnet_width(model: str) -> int | None:
    """The width of a ConvNet model name (``convnet`` -> 64), else None."""
    if model == "convnet":
        return 64
    if model.startswith("convnet") and model[len("convnet") :].isdigit():
        return int(model[len("convnet") :])
    return None


def mean_colour_psnr(truth: torch.Tensor, info: data.DatasetInfo) -> torch.Tensor:
    """PSNR (dB) per image of the data set's mean colour, a flat image.

    The guess of an attacker who has not seen the update: a reconstruction
    leaks something about the image only where it scores above this.
    """
    mean = torch.tensor(info.mean, dtype=truth.dtype).view(1, -1, 1, 1)
    return metrics.psnr(mean.expand_as(truth.cpu()), truth.cpu())


def trained_network(
    params: IGParams, device: torch.device, *, progress: bool
) -> training.TrainedModel:
    """``params.model`` trained on ``params.dataset`` (cached on disk).

    :func:`gi_lib.training.trained_model` trains with mini-batches of 128;
    another ``train_batch_size`` gives the short CPU runs more SGD steps for
    the same compute and is cached under its own name (``-b<size>``).
    """
    num_images = params.train_images or None
    if params.train_batch_size == 128:
        return training.trained_model(
            params.model,
            params.dataset,
            epochs=params.train_epochs,
            seed=params.seed,
            device=device,
            num_images=num_images,
            lr=params.train_lr,
            progress=progress,
        )
    path = training.checkpoint_path(
        params.model,
        params.dataset,
        epochs=params.train_epochs,
        seed=params.seed,
        num_images=num_images,
        lr=params.train_lr,
    )
    path = path.with_name(f"{path.stem}-b{params.train_batch_size}{path.suffix}")
    info = data.dataset_info(params.dataset)
    model = models.build_model(params.model, info, seed=params.seed)

    def fit(model: torch.nn.Module) -> dict[str, float]:
        images, labels = training.sample_split(
            params.dataset, "train", num_images, params.seed
        )
        start = time.perf_counter()
        training.train(
            model,
            images,
            labels,
            epochs=params.train_epochs,
            seed=params.seed,
            device=device,
            batch_size=params.train_batch_size,
            lr=params.train_lr,
            progress=progress,
        )
        seconds = time.perf_counter() - start
        # Scored as trained_model scores: up to 2,000 test images.
        count = 2000 if num_images is None else min(2000, num_images)
        test_images, test_labels = training.sample_split(
            params.dataset, "test", count, params.seed + 1
        )
        return {
            "test_accuracy": training.accuracy(model, test_images, test_labels, device),
            "train_seconds": seconds,
        }

    record, cached = training.load_or_train(
        path, model, fit, fields=("test_accuracy", "train_seconds")
    )
    return training.TrainedModel(
        model=model.to(device).eval(),
        path=path,
        epochs=params.train_epochs,
        test_accuracy=float(record["test_accuracy"]),
        train_seconds=float(record["train_seconds"]),
        cached=cached,
    )


def distinct_label_victims(
    dataset: torch.utils.data.Dataset, num_images: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_images`` images with distinct labels, as the paper's batches."""
    pool, labels, _ = data.sample_victims(
        dataset, min(len(dataset), 40 * num_images), seed
    )  # type: ignore[arg-type]
    chosen: list[int] = []
    seen: set[int] = set()
    for i, label in enumerate(labels.tolist()):
        if label not in seen:
            seen.add(label)
            chosen.append(i)
        if len(chosen) == num_images:
            break
    if len(chosen) < num_images:
        raise ValueError(f"could not find {num_images} distinct labels")
    index = torch.tensor(chosen)
    return pool[index], labels[index]


def _observe_one(
    net: torch.nn.Module,
    victims: tuple[torch.Tensor, torch.Tensor],
    i: int,
    info: data.DatasetInfo,
    device: torch.device,
) -> tuple[fl.Observation, torch.Tensor]:
    """The gradient of victim image ``i`` (labels known) and the image."""
    images, labels = victims
    truth = images[i : i + 1].to(device)
    observation = fl.observe_fedsgd(
        net,
        truth,
        labels[i : i + 1].to(device),
        num_classes=info.num_classes,
        reveal_labels=True,
    )
    return observation, truth


def run_table(
    params: IGParams,
    device: torch.device,
    trained: training.TrainedModel,
    victims: tuple[torch.Tensor, torch.Tensor],
    *,
    progress: bool,
) -> dict[str, list[AttackedSample]]:
    """Experiment 1: trained vs untrained, L2 + L-BFGS vs the paper's attack.

    Image ``i`` is attacked with seed ``params.seed + i`` in every cell, so
    the four cells are paired trials. The cosine attack's TV weight is
    ``tv_weight`` on the untrained network and ``trained_tv_weight`` on the
    trained one, as the official notebooks choose a larger weight for
    trained networks.

    Returns:
        ``"<network>/<loss>"`` (``untrained/cosine``) -> one record per image.
    """
    info = data.dataset_info(params.dataset)
    networks = {
        "untrained": models.build_model(params.model, info, seed=params.seed),
        "trained": trained.model,
    }
    lbfgs = OptimConfig(
        optimizer="lbfgs",
        lr=1.0,
        max_iterations=params.lbfgs_iterations,
        on_divergence="stop",
    )
    tv_weights = {"untrained": params.tv_weight, "trained": params.trained_tv_weight}
    table: dict[str, list[AttackedSample]] = {}
    for state, net in networks.items():
        cosine = _config(params, params.max_iterations, tv_weights[state])
        net = net.to(device).eval()
        l2_trials = table.setdefault(f"{state}/l2", [])
        cosine_trials = table.setdefault(f"{state}/cosine", [])
        for i in range(params.num_trials):
            observation, truth = _observe_one(net, victims, i, info, device)
            seed = params.seed + i
            l2_trials.append(
                attack_and_score(
                    partial(
                        inverting.reconstruct_l2_lbfgs, observation, lbfgs, seed=seed
                    ),
                    truth,
                    setting="L2 + L-BFGS",
                    index=i,
                )
            )
            cosine_trials.append(
                attack_and_score(
                    partial(
                        inverting.reconstruct,
                        observation,
                        cosine,
                        seed=seed,
                        truth=truth,
                    ),
                    truth,
                    setting="cosine",
                    index=i,
                )
            )
            if progress:
                print(
                    f"{state} #{i}: L2 {l2_trials[-1].psnr:.1f} dB, "
                    f"cosine {cosine_trials[-1].psnr:.1f} dB",
                    flush=True,
                )
    return table


def run_widths(
    params: IGParams,
    device: torch.device,
    victims: tuple[torch.Tensor, torch.Tensor],
    table: dict[str, list[AttackedSample]],
    *,
    progress: bool,
) -> dict[int, list[AttackedSample]]:
    """The paper's attack on untrained ConvNets of each of ``params.widths``.

    The table's images and seeds, the table's attack; the width of
    ``params.model`` (when it is a ConvNet) reuses the table's untrained
    cosine records, which are the same computation.

    Returns:
        Width -> one record per image, in the table's order.
    """
    info = data.dataset_info(params.dataset)
    config = _config(params, params.max_iterations)
    out: dict[int, list[AttackedSample]] = {}
    for width in sorted(params.widths):
        if width == convnet_width(params.model):
            out[width] = table["untrained/cosine"]
            continue
        net = models.build_model(convnet_name(width), info, seed=params.seed)
        net = net.to(device).eval()
        trials = out.setdefault(width, [])
        for i in range(params.num_trials):
            observation, truth = _observe_one(net, victims, i, info, device)
            trials.append(
                attack_and_score(
                    partial(
                        inverting.reconstruct,
                        observation,
                        config,
                        seed=params.seed + i,
                        truth=truth,
                    ),
                    truth,
                    setting=f"width {width}",
                    index=i,
                )
            )
            if progress:
                print(f"width {width} #{i}: {trials[-1].psnr:.1f} dB", flush=True)
    return out


def fedavg_settings(params: IGParams) -> list[dict[str, float]]:
    """The base setting, then one factor changed at a time."""
    epochs, images, lrs = params.fedavg_epochs, params.fedavg_images, params.fedavg_lrs
    base = {"epochs": epochs[0], "images": images[0], "lr": lrs[0]}
    settings = [dict(base)]
    settings += [{**base, "epochs": e} for e in epochs[1:]]
    settings += [{**base, "images": n} for n in images[1:]]
    settings += [{**base, "lr": lr} for lr in lrs[1:]]
    return settings


def _local_steps(setting: dict[str, float], batch_size: int) -> tuple[int, int | None]:
    images = int(setting["images"])
    size = images if batch_size == 0 else min(batch_size, images)
    return int(setting["epochs"]) * (images // size), size


def _fedavg_trial(
    params: IGParams,
    device: torch.device,
    dataset: torch.utils.data.Dataset,
    net: torch.nn.Module,
    setting: dict[str, float],
    trial: int,
) -> tuple[fl.Observation, AttackedSample]:
    """One client of ``setting`` on image set ``trial``, attacked by unrolling."""
    info = data.dataset_info(params.dataset)
    truth, labels = distinct_label_victims(
        dataset, int(setting["images"]), params.seed + 1 + FEDAVG_SEED_STRIDE * trial
    )
    truth = truth.to(device)
    steps, size = _local_steps(setting, params.fedavg_batch_size)
    observation = fl.observe_fedavg(
        net,
        truth,
        labels.to(device),
        num_classes=info.num_classes,
        local_lr=setting["lr"],
        local_steps=steps,
        local_batch_size=size,
        reveal_labels=True,
    )
    label = (
        f"{int(setting['epochs'])} ep, {int(setting['images'])} img, "
        f"lr {setting['lr']:g}"
    )
    config = _config(params, params.fedavg_iterations)
    attacked = attack_and_score(
        partial(inverting.reconstruct, observation, config, seed=params.seed + trial),
        truth,
        setting=label,
        index=trial,
    )
    return observation, attacked


def most_steps(settings: list[dict[str, float]], batch_size: int) -> int:
    """Index of the setting with the most local steps (the first if tied)."""
    steps = [_local_steps(s, batch_size)[0] for s in settings]
    return steps.index(max(steps))


@dataclass
class FedAvgRun:
    """Experiment 2's records.

    Attributes:
        settings: ``(client setting with its local steps, record)`` per
            setting, all on image set 0.
        ignoring_steps: the base setting's update attacked as a gradient.
        trials: the setting with the most local steps (``trial_setting``) on
            image sets ``0 .. num_trials - 1`` (set 0 is its settings record).
        trial_setting: that setting, with its local steps.
    """

    settings: list[tuple[dict[str, float], AttackedSample]]
    ignoring_steps: AttackedSample
    trials: list[AttackedSample]
    trial_setting: dict[str, float]


def run_fedavg(
    params: IGParams,
    device: torch.device,
    dataset: torch.utils.data.Dataset,
    *,
    progress: bool = False,
) -> FedAvgRun:
    """Experiment 2: FedAvg updates on an untrained network.

    Image set ``t`` is drawn with seed ``seed + 1 + 10 t`` and attacked with
    seed ``seed + t``.
    """
    info = data.dataset_info(params.dataset)
    net = models.build_model(params.model, info, seed=params.seed).to(device)
    config = _config(params, params.fedavg_iterations)
    settings = fedavg_settings(params)
    out = []
    for setting in settings:
        observation, attacked = _fedavg_trial(
            params, device, dataset, net, setting, trial=0
        )
        steps, _ = _local_steps(setting, params.fedavg_batch_size)
        out.append(({**setting, "steps": steps}, attacked))
        if len(out) == 1:
            base_observation, base_truth = observation, attacked.true_images
        if progress:
            print(f"FedAvg {attacked.setting}: {attacked.psnr:.1f} dB", flush=True)
    ignoring = attack_and_score(
        partial(
            inverting.reconstruct,
            as_gradient(base_observation),
            config,
            seed=params.seed,
        ),
        base_truth.to(device),
        setting="ignoring local steps",
    )
    pick = most_steps(settings, params.fedavg_batch_size)
    trials = [out[pick][1]]
    for trial in range(1, params.num_trials):
        _, attacked = _fedavg_trial(
            params, device, dataset, net, settings[pick], trial=trial
        )
        trials.append(attacked)
        if progress:
            print(
                f"FedAvg {attacked.setting}, set {trial}: {attacked.psnr:.1f} dB",
                flush=True,
            )
    return FedAvgRun(
        settings=out, ignoring_steps=ignoring, trials=trials, trial_setting=out[pick][0]
    )


def as_gradient(observation: fl.Observation) -> fl.Observation:
    """A FedAvg update read as if it were one gradient (``-update``).

    The attack that ignores the local steps: it matches the (sign-flipped)
    weight difference with one simulated gradient on the whole batch.
    """
    return dataclasses.replace(
        observation,
        gradients=tuple(-u for u in observation.gradients),
        update_kind="gradient",
        local_lr=None,
        local_steps=None,
        local_batch_size=None,
    )


def run_batches(
    params: IGParams, device: torch.device, dataset: torch.utils.data.Dataset
) -> tuple[dict[int, AttackedSample], dict[int, float]]:
    """Experiment 3: one update of ``b`` images for each batch size ``b``.

    Returns:
        The record per batch size, and the share of labels iDLG's rule
        reads off each update (the attack itself is given the labels).
    """
    info = data.dataset_info(params.dataset)
    net = models.build_model(params.model, info, seed=params.seed).to(device)
    config = _config(params, params.batch_iterations)
    out: dict[int, AttackedSample] = {}
    label_accuracy: dict[int, float] = {}
    for size in params.batch_sizes:
        truth, labels = distinct_label_victims(dataset, size, params.seed + 2)
        truth, labels = truth.to(device), labels.to(device)
        observation = fl.observe_fedsgd(
            net, truth, labels, num_classes=info.num_classes, reveal_labels=True
        )
        blind = dataclasses.replace(observation, labels=None)
        label_accuracy[size] = metrics.label_accuracy(
            infer_labels(blind).cpu(), labels.cpu()
        )
        out[size] = attack_and_score(
            partial(inverting.reconstruct, observation, config, seed=params.seed),
            truth,
            setting=f"{size} images",
            true_labels=labels,
        )
    return out, label_accuracy


def run_imagenet(
    params: IGParams, device: torch.device
) -> tuple[str, AttackedSample | None]:
    """Experiment 4: one 224x224 image on an untrained ResNet-18, if available.

    Returns:
        A note for the page, and the record (None without a local ImageNet).
    """
    try:
        images = data.load_dataset("imagenet")
    except data.DataUnavailableError:
        return (
            f"No ImageNet folder was found (set {data.DATA_ENV} to a folder holding "
            "`imagenet/<split>/<class>/<image>`), so the ImageNet example is "
            "skipped.",
            None,
        )
    info = data.dataset_info("imagenet")
    truth, labels, _ = data.sample_victims(images, 1, params.seed)
    truth = truth.to(device)
    net = models.build_model("resnet18", info, seed=params.seed).to(device).eval()
    observation = fl.observe_fedsgd(
        net,
        truth,
        labels.to(device),
        num_classes=info.num_classes,
        reveal_labels=True,
    )
    config = _config(params, params.batch_iterations)
    attacked = attack_and_score(
        partial(inverting.reconstruct, observation, config, seed=params.seed),
        truth,
        setting="imagenet",
    )
    return (
        f"One image from {images.root} attacked on an untrained ResNet-18 with "  # type: ignore[attr-defined]
        "3x3 stem (not torchvision's ImageNet ResNet-18, whose pretrained weights "
        "cannot be downloaded here).",
        attacked,
    )


@dataclass
class IGRun:
    """Everything the notebook shows.

    Attributes:
        params: the run's parameters.
        device: where it ran.
        trained: the trained network of experiment 1.
        table: experiment 1, ``"<network>/<loss>"`` -> one record per image.
        widths: the untrained cosine attack per ConvNet width, on the table's
            images (width -> one record per image).
        fedavg: experiment 2.
        batches: experiment 3, batch size -> record.
        batch_label_accuracy: batch size -> share of labels read off the update.
        imagenet_note: what experiment 4 did (or why it was skipped).
        imagenet: experiment 4's record, if it ran.
        seconds: wall time per part.
    """

    params: IGParams
    device: torch.device
    trained: training.TrainedModel
    table: dict[str, list[AttackedSample]]
    widths: dict[int, list[AttackedSample]]
    fedavg: FedAvgRun
    batches: dict[int, AttackedSample]
    batch_label_accuracy: dict[int, float]
    imagenet_note: str
    imagenet: AttackedSample | None
    seconds: dict[str, float]


def run_all(params: IGParams, device: torch.device, *, progress: bool) -> IGRun:
    """Train the network of experiment 1, then run the four experiments.

    The caller sets the CPU threads (the notebook's ``run``).
    """
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    trained = trained_network(params, device, progress=progress)
    seconds["training"] = time.perf_counter() - start
    dataset = data.load_dataset(params.dataset)
    victims = data.sample_victims(dataset, params.num_trials, params.seed)[:2]
    start = time.perf_counter()
    table = run_table(params, device, trained, victims, progress=progress)
    seconds["table"] = time.perf_counter() - start
    start = time.perf_counter()
    widths = run_widths(params, device, victims, table, progress=progress)
    seconds["widths"] = time.perf_counter() - start
    start = time.perf_counter()
    fedavg = run_fedavg(params, device, dataset, progress=progress)
    seconds["fedavg"] = time.perf_counter() - start
    start = time.perf_counter()
    batches, label_accuracy = run_batches(params, device, dataset)
    seconds["batches"] = time.perf_counter() - start
    note, imagenet = run_imagenet(params, device)
    return IGRun(
        params=params,
        device=device,
        trained=trained,
        table=table,
        widths=widths,
        fedavg=fedavg,
        batches=batches,
        batch_label_accuracy=label_accuracy,
        imagenet_note=note,
        imagenet=imagenet,
        seconds=seconds,
    )
