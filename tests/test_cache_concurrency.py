"""The trained-model cache under `make -j N book`: processes that ask for the
same model at once train it once and never read a half-written file."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from torch import nn

from gi_lib import training
from gi_lib._io import file_lock

FIELDS = ("test_accuracy", "train_seconds")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def _load_or_train(path: str, log: str) -> tuple[dict[str, float], bool, list[float]]:
    """One "notebook": load the model from the cache, or train it slowly.

    Training appends a line to ``log`` so the test can count the trainings,
    and sleeps long enough that an unlocked second caller would start its own.
    """

    def fit(model: nn.Module) -> dict[str, float]:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write("trained\n")
        time.sleep(1.0)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(1.0)
        return {"test_accuracy": 0.75, "train_seconds": 1.0}

    torch.set_num_threads(1)
    model = _net()
    record, cached = training.load_or_train(Path(path), model, fit, fields=FIELDS)
    weights = [float(value.sum()) for value in model.state_dict().values()]
    return record, cached, weights


def test_parallel_callers_train_once_and_share_the_file(tmp_path: Path) -> None:
    path = tmp_path / "models" / "net-e1-s0.pt"
    log = tmp_path / "trainings.log"
    context = multiprocessing.get_context("spawn")  # as separate notebooks are
    with ProcessPoolExecutor(max_workers=3, mp_context=context) as pool:
        futures = [pool.submit(_load_or_train, str(path), str(log)) for _ in range(3)]
        outcomes = [future.result(timeout=120) for future in futures]

    assert log.read_text(encoding="utf-8").splitlines() == ["trained"]
    assert sorted(cached for _, cached, _ in outcomes) == [False, True, True]
    records = [record for record, _, _ in outcomes]
    assert all(record == records[0] for record in records)
    weights = [w for _, _, w in outcomes]
    assert all(w == weights[0] for w in weights)  # every caller has the trained net
    # Nothing half-written or temporary is left beside the cache file.
    leftovers = sorted(p.name for p in path.parent.iterdir())
    assert leftovers == [path.name]


def _hold(lock_target: str, marks: str, seconds: float) -> None:
    with file_lock(lock_target):
        with open(marks, "a", encoding="utf-8") as handle:
            handle.write(f"in {time.monotonic()}\n")
        time.sleep(seconds)
        with open(marks, "a", encoding="utf-8") as handle:
            handle.write(f"out {time.monotonic()}\n")


def test_file_lock_excludes_other_processes(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "thing.pt"
    marks = tmp_path / "marks"
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = [pool.submit(_hold, str(target), str(marks), 0.5) for _ in range(2)]
        for future in futures:
            future.result(timeout=60)
    events = [line.split()[0] for line in marks.read_text().splitlines()]
    assert events == ["in", "out", "in", "out"]  # never two holders at once
    # The lock never creates the file it guards, and leaves no lock file.
    assert list((tmp_path / "sub").iterdir()) == []


def test_file_lock_is_released_on_error(tmp_path: Path) -> None:
    target = tmp_path / "thing.pt"
    try:
        with file_lock(target):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with file_lock(target):  # would block forever if the lock were still held
        pass
