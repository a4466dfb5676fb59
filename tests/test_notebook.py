"""A page's bookkeeping (gi_lib.notebook.Page): parameters, threads, results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from gi_lib.experiments import dlg as experiment
from gi_lib.notebook import Page
from gi_lib.params import ParameterError
from gi_lib.results import ResultRow, untested_claim

PARAMETERS: dict[str, Any] = {
    "profile": "smoke",
    "dataset": "mnist",
    "model": "lenet",
    "num_trials": 1,
    "seed": 0,
    "device": "cpu",
    "num_threads": 1,
    "max_iterations": 4,
    "lr": 1.0,
    "success_psnr": 30.0,
    "num_shown": 1,
}


@pytest.fixture(autouse=True)
def torch_threads_restored() -> Iterator[None]:
    """Page.check sets torch's thread count for the page; put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _notebook_globals() -> dict[str, Any]:
    """A notebook's namespace before its parameters cell: imports and IPython's."""
    return {"experiment": experiment, "Page": Page, "In": [], "_": None}


def test_check_takes_the_names_defined_after_the_page_and_not_the_page() -> None:
    namespace = _notebook_globals()
    namespace["page"] = page = Page(experiment, namespace)
    namespace.update(PARAMETERS)
    namespace["_hidden"] = "a private name, not a parameter"
    params = page.check(namespace)
    assert params == experiment.check(PARAMETERS)
    assert params.dataset == ("mnist",)  # typed by the driver
    assert page.params is params


def test_a_misspelt_parameter_stops_the_page() -> None:
    namespace = _notebook_globals()
    page = Page(experiment, namespace)
    namespace.update(PARAMETERS, max_iteration=3)  # papermill injected a typo
    with pytest.raises(ParameterError, match="max_iteration"):
        page.check(namespace)


def test_check_sets_the_threads_the_page_computes_on() -> None:
    namespace = _notebook_globals()
    page = Page(experiment, namespace)
    threads = 2 if torch.get_num_threads() == 1 else 1
    namespace.update(PARAMETERS, num_threads=threads)
    page.check(namespace)
    assert torch.get_num_threads() == threads


def test_finish_writes_the_results_file(tmp_path: Path) -> None:
    namespace = _notebook_globals()
    page = Page(experiment, namespace)
    namespace.update(PARAMETERS, profile="cpu")
    page.check(namespace)
    rows = [ResultRow.against("mnist/lenet/bs1", "psnr", 12.5, None, "a note")]
    claims = [untested_claim("DLG recovers images", "Sec. 4", "a stand-in")]
    finished = page.finish(
        SimpleNamespace(device=torch.device("cpu")), rows, claims, directory=tmp_path
    )
    path = finished.path
    assert path == tmp_path / "dlg.json"
    # Shown on the page: how long it ran, with what.
    shown = finished._repr_markdown_()
    assert shown.startswith("This page ran in ") and "`cpu` profile on cpu" in shown
    assert f"{PARAMETERS['num_threads']} CPU thread" in shown
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["notebook"] == "dlg"
    assert record["profile"] == "cpu"
    assert record["parameters"]["dataset"] == ["mnist"]
    assert record["environment"]["device"] == "cpu"
    assert record["environment"]["threads"] == PARAMETERS["num_threads"]
    assert record["wall_seconds"] >= 0
    assert [(r["experiment"], r["ours"]) for r in record["rows"]] == [
        ("mnist/lenet/bs1", 12.5)
    ]
    assert [c["claim"] for c in record["claims"]] == ["DLG recovers images"]


def test_finish_needs_at_least_one_claim(tmp_path: Path) -> None:
    namespace = _notebook_globals()
    page = Page(experiment, namespace)
    namespace.update(PARAMETERS)
    page.check(namespace)
    rows = [ResultRow.against("mnist/lenet/bs1", "psnr", 12.5, None, "a note")]
    with pytest.raises(ValueError, match="at least one of its paper's claims"):
        page.finish(SimpleNamespace(device="cpu"), rows, [], directory=tmp_path)
    assert not list(tmp_path.iterdir())


def test_finish_before_check_says_what_to_call(tmp_path: Path) -> None:
    page = Page(experiment, _notebook_globals())
    rows = [ResultRow.against("mnist/lenet/bs1", "psnr", 1.0, None, "")]
    with pytest.raises(RuntimeError, match=r"page\.check\(globals\(\)\)"):
        page.finish(SimpleNamespace(device="cpu"), rows, [], directory=tmp_path)
    assert not list(tmp_path.iterdir())
