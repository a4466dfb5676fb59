"""The cached trainer: one cache for plain and defended training, and bad files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from gi_lib import data, training
from gi_lib.defenses import GradientPruning
from gi_lib.defenses import utility as defended

CPU = torch.device("cpu")


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def _fit(calls: list[dict[str, torch.Tensor]]):
    """A stand-in trainer that records the weights it started from."""

    def fit(model: nn.Module) -> dict[str, float]:
        calls.append({k: v.clone() for k, v in model.state_dict().items()})
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(1.0)
        return {"test_accuracy": 0.5, "train_seconds": 2.0}

    return fit


def _refuse(model: nn.Module) -> dict[str, float]:
    raise AssertionError("trained although the cache holds the model")


FIELDS = ("test_accuracy", "train_seconds")


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cache_file_joins_the_key_parts(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    assert training.cache_file(["lenet", "mnist", "e5"]) == (
        tmp_path / "models" / "lenet-mnist-e5.pt"
    )
    assert training.checkpoint_path(
        "convnet8", "cifar10", epochs=3, seed=1, num_images=64, lr=0.01
    ) == (tmp_path / "models" / "convnet8-cifar10-e3-s1-n64-lr0.01.pt")
    assert defended.cache_path(
        "lenet",
        "mnist",
        GradientPruning(0.5),
        epochs=1,
        seed=0,
        num_images=64,
        lr=0.05,
        batch_size=16,
    ) == (
        tmp_path
        / "models"
        / "defended"
        / "lenet-mnist-prune0.5-d0-e1-s0-n64-lr0.05-b16.pt"
    )


def test_a_miss_trains_and_saves_then_a_hit_loads(tmp_path: Path) -> None:
    path = tmp_path / "models" / "net.pt"
    calls: list[dict[str, torch.Tensor]] = []
    first = _net()
    record, cached = training.load_or_train(path, first, _fit(calls), fields=FIELDS)
    assert not cached and len(calls) == 1 and path.is_file()
    assert record == {"test_accuracy": 0.5, "train_seconds": 2.0}
    assert not [p for p in path.parent.iterdir() if p.name != "net.pt"]  # no temp

    second = _net()
    record, cached = training.load_or_train(path, second, _refuse, fields=FIELDS)
    assert cached and record == {"test_accuracy": 0.5, "train_seconds": 2.0}
    assert _same(second.state_dict(), first.state_dict())


@pytest.mark.parametrize(
    "spoil",
    [
        # A write cut short (the file of an interrupted copy).
        lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
        lambda path: path.write_bytes(b""),
        # Weights of another architecture: a strict load fails.
        lambda path: torch.save(
            {"state_dict": nn.Linear(4, 2).state_dict(), **dict.fromkeys(FIELDS, 0)},
            path,
        ),
        # A record without the fields asked for.
        lambda path: torch.save({"state_dict": _net().state_dict()}, path),
    ],
    ids=["truncated", "empty", "other-architecture", "no-record"],
)
def test_an_unloadable_file_is_moved_aside_and_the_model_retrained(
    tmp_path: Path, spoil
) -> None:
    path = tmp_path / "net.pt"
    training.load_or_train(path, _net(), _fit([]), fields=FIELDS)
    spoil(path)
    bad = path.read_bytes()

    calls: list[dict[str, torch.Tensor]] = []
    model = _net()
    named = re.escape(f"{path} could not") + ".*" + re.escape(f"{path}.corrupt")
    with pytest.warns(RuntimeWarning, match=named):
        record, cached = training.load_or_train(path, model, _fit(calls), fields=FIELDS)
    assert not cached and len(calls) == 1
    # Trained from the seeded initial weights, not from a half-loaded file.
    assert _same(calls[0], _net().state_dict())
    assert (tmp_path / "net.pt.corrupt").read_bytes() == bad
    # A valid file again: the next call loads it.
    again = _net()
    record, cached = training.load_or_train(path, again, _refuse, fields=FIELDS)
    assert cached and _same(again.state_dict(), model.state_dict())


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def test_trained_model_recovers_from_a_truncated_cache(
    tmp_path: Path, monkeypatch, mnist
) -> None:
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    kwargs = dict(epochs=1, seed=0, device=CPU, num_images=32)
    first = training.trained_model("lenet", "mnist", **kwargs)
    _truncate(first.path)
    with pytest.warns(RuntimeWarning, match=re.escape(str(first.path))):
        retrained = training.trained_model("lenet", "mnist", **kwargs)
    assert not retrained.cached
    assert retrained.test_accuracy == first.test_accuracy  # the same training
    assert _same(retrained.model.state_dict(), first.model.state_dict())

    def no_training(*args, **kwargs):
        raise AssertionError("trained although the cache holds the model")

    monkeypatch.setattr(training, "train", no_training)
    cached = training.trained_model("lenet", "mnist", **kwargs)
    assert cached.cached and cached.test_accuracy == first.test_accuracy


def test_defended_training_recovers_from_a_truncated_cache(
    tmp_path: Path, monkeypatch, mnist
) -> None:
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    kwargs = dict(
        epochs=1, seed=0, device=CPU, num_images=32, test_images=32, batch_size=16
    )
    defense = GradientPruning(0.5)
    first = defended.train_with_defense("lenet", "mnist", defense, **kwargs)
    path = defended.cache_path(
        "lenet",
        "mnist",
        defense,
        epochs=1,
        seed=0,
        num_images=32,
        lr=0.05,
        batch_size=16,
    )
    _truncate(path)
    with pytest.warns(RuntimeWarning, match=re.escape(str(path))):
        retrained = defended.train_with_defense("lenet", "mnist", defense, **kwargs)
    assert not retrained.cached and retrained.steps == first.steps == 2
    assert _same(retrained.model.state_dict(), first.model.state_dict())

    def no_data(*args, **kwargs):
        raise AssertionError("read training data although the cache holds the model")

    monkeypatch.setattr(defended, "sample_split", no_data)
    cached = defended.train_with_defense("lenet", "mnist", defense, **kwargs)
    assert cached.cached and cached.test_accuracy == first.test_accuracy
