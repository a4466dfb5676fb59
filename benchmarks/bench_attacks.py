"""Seconds per attack step, and its ratio to one plain forward+backward.

An attack step is one evaluation of the gradient-matching loss and its
gradient with respect to the dummy images: a forward pass, a backward pass
that builds a graph (create_graph=True), the distance, and a backward pass
through all of that. Its floor is roughly three to four plain
forward+backward passes. Timings are medians from torch.utils.benchmark;
run with the machine otherwise idle, and compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils import benchmark

from gi_lib import data, fl, models
from gi_lib.attacks import dlg, inverting
from gi_lib.attacks.base import OptimConfig, l2_gradient_distance, simulated_gradients


def _median_seconds(fn, min_run_time: float) -> float:
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn})
    return timer.blocked_autorange(min_run_time=min_run_time).median


def bench_lenet(
    batch_size: int, *, min_run_time: float, device: torch.device
) -> dict[str, float]:
    info = data.dataset_info("cifar10")
    net = models.build_model("lenet", info, seed=0).to(device)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch_size, 3, 32, 32, generator=generator).to(device)
    labels = torch.randint(0, 10, (batch_size,), generator=generator).to(device)
    observed = fl.fedsgd_gradient(net, images, labels)
    parameters = fl.trainable_parameters(net)
    dummy = (
        torch.rand(batch_size, 3, 32, 32, generator=generator)
        .to(device)
        .requires_grad_()
    )
    label_logits = (
        torch.randn(batch_size, 10, generator=generator).to(device).requires_grad_()
    )

    def plain_step() -> None:
        loss = fl.cross_entropy(net(images), labels)
        torch.autograd.grad(loss, parameters)

    def attack_step() -> None:
        soft = torch.softmax(label_logits, dim=-1)
        grads = simulated_gradients(net, dummy, soft, fl.cross_entropy)
        distance = l2_gradient_distance(grads, observed)
        torch.autograd.grad(distance, [dummy, label_logits])

    plain = _median_seconds(plain_step, min_run_time)
    attack = _median_seconds(attack_step, min_run_time)
    # The whole loop (L-BFGS bookkeeping, history, checks) per loss evaluation.
    observation = fl.observe_fedsgd(net, images, labels, num_classes=10)
    config = dlg.DLGConfig(OptimConfig(max_iterations=5))
    loop_times = []
    for repeat in range(3):
        start = time.perf_counter()
        result = dlg.reconstruct(observation, config, seed=repeat)
        loop_times.append((time.perf_counter() - start) / result.evaluations)
    loop = statistics.median(loop_times)
    return {"plain": plain, "attack": attack, "ratio": attack / plain, "loop": loop}


def bench_inverting(
    name: str,
    batch_size: int,
    *,
    restarts: int,
    min_run_time: float,
    device: torch.device,
) -> dict[str, float]:
    """One Inverting Gradients step (cosine + TV, signed gradient) on ``name``.

    Also times ``restarts`` restarts in one step, vectorised with vmap (as
    :func:`gi_lib.attacks.inverting.reconstruct` runs them by default) and one
    after another.
    """
    info = data.dataset_info("cifar10")
    net = models.build_model(name, info, seed=0).to(device).eval()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch_size, 3, 32, 32, generator=generator).to(device)
    labels = torch.randint(0, 10, (batch_size,), generator=generator).to(device)
    observation = fl.observe_fedsgd(net, images, labels, num_classes=10)
    parameters = fl.trainable_parameters(net)
    update_of = inverting.simulated_update(observation, labels)

    def cost(z: torch.Tensor) -> torch.Tensor:
        matching = inverting.cosine_distance(update_of(z), observation.gradients)
        return matching + 1e-4 * inverting.total_variation(z)

    dummy = torch.rand(1, batch_size, 3, 32, 32, generator=generator).to(device)
    dummy.requires_grad_(True)
    many = torch.rand(restarts, batch_size, 3, 32, 32, generator=generator).to(device)
    many.requires_grad_(True)

    def plain_step() -> None:
        loss = fl.cross_entropy(net(images), labels)
        torch.autograd.grad(loss, parameters)

    def attack_step() -> None:
        (g,) = torch.autograd.grad(cost(dummy[0]), dummy)
        g.sign()

    def batched_restarts() -> None:
        (g,) = torch.autograd.grad(torch.func.vmap(cost)(many).sum(), many)
        g.sign()

    def sequential_restarts() -> None:
        total = torch.stack([cost(many[r]) for r in range(restarts)]).sum()
        (g,) = torch.autograd.grad(total, many)
        g.sign()

    plain = _median_seconds(plain_step, min_run_time)
    attack = _median_seconds(attack_step, min_run_time)
    batched = _median_seconds(batched_restarts, min_run_time)
    sequential = _median_seconds(sequential_restarts, min_run_time)
    return {
        "plain": plain,
        "attack": attack,
        "ratio": attack / plain,
        "batched": batched,
        "sequential": sequential,
        "gain": sequential / batched,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-run-time", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--inverting-models",
        default="convnet,resnet18",
        help="comma-separated models for the Inverting Gradients step",
    )
    parser.add_argument("--restarts", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"device={device} threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    print("DLG step on LeNet (CIFAR-10 shape), median seconds")
    print(
        f"{'batch':>5} {'plain f+b (ms)':>15} {'attack step (ms)':>17} {'ratio':>6} "
        f"{'in DLG loop (ms)':>17} {'loop ratio':>10}"
    )
    for batch_size in (1, 4, 8):
        result = bench_lenet(batch_size, min_run_time=args.min_run_time, device=device)
        print(
            f"{batch_size:>5} {1e3 * result['plain']:>15.3f} "
            f"{1e3 * result['attack']:>17.3f} {result['ratio']:>6.2f} "
            f"{1e3 * result['loop']:>17.3f} {result['loop'] / result['plain']:>10.2f}"
        )
    _print_inverting(args, device)


def _print_inverting(args: argparse.Namespace, device: torch.device) -> None:
    print(
        f"\nInverting Gradients step (cosine + TV, signed), median seconds; "
        f"{args.restarts} restarts batched (vmap) vs one after another"
    )
    print(
        f"{'model':>10} {'batch':>5} {'plain f+b (ms)':>15} {'attack step (ms)':>17} "
        f"{'ratio':>6} {'restarts batched (ms)':>22} {'sequential (ms)':>16} "
        f"{'gain':>5}"
    )
    for name in [n.strip() for n in args.inverting_models.split(",") if n.strip()]:
        for batch_size in (1, 4):
            r = bench_inverting(
                name,
                batch_size,
                restarts=args.restarts,
                min_run_time=args.min_run_time,
                device=device,
            )
            print(
                f"{name:>10} {batch_size:>5} {1e3 * r['plain']:>15.2f} "
                f"{1e3 * r['attack']:>17.2f} {r['ratio']:>6.2f} "
                f"{1e3 * r['batched']:>22.2f} {1e3 * r['sequential']:>16.2f} "
                f"{r['gain']:>5.2f}"
            )


if __name__ == "__main__":
    main()
