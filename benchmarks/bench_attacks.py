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
from gi_lib.attacks import dlg
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-run-time", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
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


if __name__ == "__main__":
    main()
