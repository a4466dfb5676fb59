"""Shared fixtures: real images from the offline copies (or torchvision's cache)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from gi_lib import data

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "GI_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["GI_DATA_DIR"] = str(SHARED_DATA)

torch.set_num_threads(1)  # small models: one thread is as fast and repeatable


def _load(name: str):
    try:
        return data.load_dataset(name, "test", download=False)
    except data.DataUnavailableError as error:
        if os.environ.get("CI"):
            raise  # CI must run these tests on real images
        pytest.skip(f"{name} not available offline: {error}")


@pytest.fixture(scope="session")
def cifar10():
    return _load("cifar10")


@pytest.fixture(scope="session")
def mnist():
    return _load("mnist")
