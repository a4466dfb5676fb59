"""Seconds per attack step in the shared loop, against one plain forward+backward.

An attack step is one evaluation of the gradient-matching loss and its
gradient with respect to the dummy images: a forward pass, a backward pass
that builds a graph (create_graph=True), the distance, the priors, and a
backward pass through all of that, plus the loop's bookkeeping (optimiser,
box, history). Its floor is roughly three to four plain forward+backward
passes. The step is timed through the attacks as a user runs them
(``build_attack(...).reconstruct``): DLG's L-BFGS on LeNet (seconds per loss
evaluation), Inverting Gradients' signed Adam on its ConvNet and on ResNet-18
(seconds per step). ``--compile`` also times the compiled matching step
(``OptimConfig.compile``): its one-off compile time, its step, and the step
count from which it pays. Plain passes are medians from torch.utils.benchmark,
loop steps medians over repeats; compare ratios, not seconds, and run with
the machine otherwise idle.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils import benchmark

from gi_lib import data, fl, models
from gi_lib.attacks import OptimConfig, build_attack

ATTACK_OF = {"lenet": "dlg", "convnet": "inverting", "resnet18": "inverting"}


def _median_seconds(fn, min_run_time: float) -> float:  # noqa: ANN001
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn})
    return timer.blocked_autorange(min_run_time=min_run_time).median


def _problem(
    name: str, batch_size: int, device: torch.device
) -> tuple[torch.nn.Module, fl.Observation, torch.Tensor, torch.Tensor]:
    info = data.dataset_info("cifar10")
    net = models.build_model(name, info, seed=0).to(device).eval()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch_size, 3, 32, 32, generator=generator).to(device)
    labels = torch.randperm(10, generator=generator)[:batch_size].to(device)
    observation = fl.observe_fedsgd(
        net, images, labels, num_classes=10, reveal_labels=name != "lenet"
    )
    return net, observation, images, labels


def plain_seconds(
    net: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    min_run_time: float,
) -> float:
    """One plain forward+backward of the batch (what a client computes)."""
    parameters = fl.trainable_parameters(net)

    def step() -> None:
        torch.autograd.grad(fl.cross_entropy(net(images), labels), parameters)

    return _median_seconds(step, min_run_time)


def loop_seconds(
    attack: str, observation: fl.Observation, *, steps: int, repeats: int, **settings
) -> float:
    """Median seconds per loss evaluation of the attack's own loop."""
    if attack == "dlg":
        optim = OptimConfig(optimizer="lbfgs", max_iterations=steps, **settings)
        built = build_attack(attack, optim=optim)
    else:
        built = build_attack(attack, max_iterations=steps, **settings)
    built.reconstruct(observation, seed=0)  # warm-up (allocations, lazy init)
    times = []
    for repeat in range(repeats):
        start = time.perf_counter()
        result = built.reconstruct(observation, seed=repeat)
        times.append((time.perf_counter() - start) / result.evaluations)
    return statistics.median(times)


def compiled_seconds(observation: fl.Observation, *, steps: int) -> tuple[float, float]:
    """``(cold compile seconds, seconds per step)`` of the compiled IG step.

    Each run compiles its own step function; after the first (cold) run the
    compiler's caches make that cheap, so the per-step time is the difference
    of a long and a one-step warm run.
    """

    def run(iterations: int) -> float:
        attack = build_attack("inverting", max_iterations=iterations, compile=True)
        start = time.perf_counter()
        attack.reconstruct(observation, seed=0)
        return time.perf_counter() - start

    cold = run(1)
    short, long = run(1), run(1 + steps)
    per_step = max(long - short, 0.0) / steps
    return cold - per_step, per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-run-time", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--models", default="lenet,convnet,resnet18", help="comma-separated"
    )
    parser.add_argument("--batch-sizes", default="1,4", help="comma-separated")
    parser.add_argument("--steps", type=int, default=5, help="loop steps timed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time the compiled IG step (minutes of compiling per case)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"device={device} threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    print(
        "Attack step in the shared loop (per loss evaluation) vs one plain "
        "forward+backward, median seconds"
    )
    header = (
        f"{'model':>9} {'attack':>9} {'batch':>5} {'plain f+b (ms)':>15} "
        f"{'loop step (ms)':>15} {'ratio':>6}"
    )
    if args.compile:
        header += (
            f" {'compiled (ms)':>14} {'ratio':>6} {'compile (s)':>12} "
            f"{'break-even steps':>17}"
        )
    print(header)
    for name in [n.strip() for n in args.models.split(",") if n.strip()]:
        attack = ATTACK_OF[name]
        for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
            net, observation, images, labels = _problem(name, batch_size, device)
            plain = plain_seconds(net, images, labels, args.min_run_time)
            step = loop_seconds(
                attack, observation, steps=args.steps, repeats=args.repeats
            )
            line = (
                f"{name:>9} {attack:>9} {batch_size:>5} {1e3 * plain:>15.2f} "
                f"{1e3 * step:>15.2f} {step / plain:>6.2f}"
            )
            if args.compile and attack == "inverting":
                compile_time, compiled = compiled_seconds(observation, steps=args.steps)
                gain = step - compiled
                even = f"{compile_time / gain:>17.0f}" if gain > 0 else f"{'never':>17}"
                line += (
                    f" {1e3 * compiled:>14.2f} {compiled / plain:>6.2f} "
                    f"{compile_time:>12.1f} {even}"
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
