"""The book's page "Adding a paper" is true: its code runs and its names exist.

The page's code blocks each start with a comment naming where the code goes
(``# gi_lib/attacks/mypaper.py``). The tests below follow the page as a new
contributor would: they assemble the attack module from its blocks, import it
from a temporary folder, build the attack by name and run the worked example
on a real MNIST image; they run the defense and the aggregation protocol, and
add the seed-list entry to a copy of ``PAPERS``. Whatever the page registers
goes into copies of the registries, discarded after each test. Every ``gi_lib``
name and repository path the page mentions must exist.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import jupytext
import pytest
import torch
import yaml
from matplotlib.figure import Figure

from gi_lib import book, data, fl, metrics, models
from gi_lib.attacks import priors, registry
from gi_lib.attacks.base import Reconstruction
from gi_lib.defenses.aggregation import SERVER, DropoutSchedule, ProtocolAbort
from gi_lib.papers import PAPERS, Paper
from gi_lib.params import ParameterError
from gi_lib.results import RESULTS_ENV, ResultRow, untested_claim

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "adding-a-paper.md"
# Names the page makes up; files and modules with these names do not exist.
PLACEHOLDERS = ("mypaper", "myprotocol")
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)


def _blocks(language: str) -> list[tuple[str, str]]:
    """``(where, code)`` of the page's code blocks in ``language``, in order.

    ``where`` is the block's first line, a comment naming where the code goes.
    """
    text = PAGE.read_text(encoding="utf-8")
    found = []
    for lang, code in FENCE.findall(text):
        if lang == language:
            first = code.splitlines()[0]
            assert first.startswith("# "), f"a {lang} block does not say where: {first}"
            found.append((first[2:], code))
    return found


def _code(where: str) -> str:
    """The page's Python code for ``where`` (its blocks joined in page order)."""
    parts = [code for place, code in _blocks("python") if place.startswith(where)]
    assert parts, f"the page has no code for {where}"
    return "\n\n".join(parts)


@pytest.fixture
def scratch_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Attacks and priors registered during a test go into copies, then vanish."""
    # The built-in attacks register on first import: import them now, into the
    # real registries, so that none is first imported into a copy and lost.
    for module in sorted(set(registry.BUILTIN_MODULES.values())):
        importlib.import_module(module)
    monkeypatch.setattr(registry, "ATTACKS", registry.ATTACKS.copy())
    monkeypatch.setattr(priors, "PRIORS", priors.PRIORS.copy())


def _import_attack_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The page's ``gi_lib/attacks/mypaper.py``, written to and imported from tmp."""
    source = tmp_path / "page_mypaper_attack.py"
    source.write_text(_code("gi_lib/attacks/mypaper.py"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(source.stem, source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up in sys.modules while the class is made.
    monkeypatch.setitem(sys.modules, source.stem, module)
    spec.loader.exec_module(module)
    return module


def _random_images(info: data.DatasetInfo, count: int, *, seed: int) -> torch.Tensor:
    shape = (count, info.channels, info.image_size, info.image_size)
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


# --- a new optimisation attack ------------------------------------------------


def test_the_page_attack_registers_and_its_notebook_runs_on_mnist(
    mnist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch_registries
) -> None:
    assert "mypaper" not in registry.attack_names()  # a name no real attack has
    module = _import_attack_module(tmp_path, monkeypatch)
    assert "mypaper" in registry.attack_names()
    assert "image_norm" in priors.PRIORS
    entry = registry.attack_entry("mypaper")
    assert entry.config_type is module.MyPaperConfig
    assert entry.reconstruct is module.reconstruct

    # The page's notebook, cell by cell, as papermill runs it with the smoke
    # profile's overrides; its driver is the page's declaration of the
    # parameters, with stand-ins for what the run computes.
    results = tmp_path / "results"
    monkeypatch.setenv(RESULTS_ENV, str(results))
    monkeypatch.setitem(
        sys.modules,
        "gi_lib.experiments.mypaper",
        _stand_in_driver(tmp_path, monkeypatch),
    )
    namespace = _run_page_notebook(
        {"profile": "smoke", "num_trials": 1, "max_iterations": 10, "device": "cpu"}
    )
    reconstruction = namespace["reconstruction"]
    truth = namespace["true_images"]
    assert isinstance(reconstruction, Reconstruction)
    assert reconstruction.images.shape == truth.shape
    assert torch.equal(reconstruction.labels, namespace["true_labels"])
    # Ten L-BFGS steps of L2 matching recover a LeNet's MNIST image (about 51
    # dB); the initial noise scores about 5 dB.
    assert float(metrics.psnr(reconstruction.images, truth)) > 30.0
    assert reconstruction.history[0]["psnr"] < 10.0
    # The page's bookkeeping wrote the results file.
    record = json.loads((results / "mypaper.json").read_text(encoding="utf-8"))
    assert record["profile"] == "smoke"
    assert record["parameters"]["max_iterations"] == 10
    assert record["parameters"]["batch_sizes"] == [1, 2, 4]
    assert record["environment"]["threads"] == 1
    assert [row["experiment"] for row in record["rows"]] == ["mnist/lenet/bs1"]
    assert [claim["verdict"] for claim in record["claims"]] == ["not tested"]


def _import_driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The page's ``gi_lib/experiments/mypaper.py``, imported from tmp."""
    source = tmp_path / "page_mypaper_driver.py"
    source.write_text(_code("gi_lib/experiments/mypaper.py"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(source.stem, source)
    assert spec is not None and spec.loader is not None
    driver = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, source.stem, driver)
    spec.loader.exec_module(driver)
    return driver


def _stand_in_driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The page's driver: its parameters and check, and stand-ins for the rest."""
    driver = _import_driver(tmp_path, monkeypatch)
    return types.SimpleNamespace(
        NOTEBOOK=driver.NOTEBOOK,
        check=driver.check,
        run=lambda params: types.SimpleNamespace(
            params=params, device=torch.device("cpu")
        ),
        psnr_figure=lambda result: Figure(),
        summary_text=lambda result: "A summary.",
        rows=lambda result: [
            ResultRow.against("mnist/lenet/bs1", "psnr", 1.0, None, "a stand-in")
        ],
        claims=lambda result: [
            untested_claim("The attack works", "Sec. 1", "a stand-in")
        ],
    )


def _run_page_notebook(injected: dict[str, Any]) -> dict[str, Any]:
    """Run the page's notebook cells in one namespace, ``injected`` after the
    parameters cell (as papermill does), and return the namespace."""
    source = _code("notebooks/attacks/mypaper.py").split("\n", 1)[1]
    notebook = jupytext.reads(source, fmt="py:percent")
    namespace: dict[str, Any] = {}
    threads = torch.get_num_threads()
    try:
        for cell in notebook.cells:
            if cell.cell_type == "code":
                exec(cell.source, namespace)
                if "parameters" in cell.metadata.get("tags", []):
                    namespace.update(injected)
    finally:
        torch.set_num_threads(threads)  # the page set its own
    return namespace


def test_the_page_driver_declares_and_checks_its_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = _import_driver(tmp_path, monkeypatch)
    values = {
        "profile": "smoke",
        "dataset": "mnist",
        "model": "lenet",
        "num_trials": 1,
        "seed": 0,
        "device": "cpu",
        "num_threads": 1,
        "max_iterations": 4,
        "batch_sizes": "1,2",
    }
    params = driver.check(values)
    assert isinstance(params, driver.MyPaperParams)
    assert params.batch_sizes == (1, 2)
    with pytest.raises(ParameterError, match="batch_sizes"):
        driver.check({**values, "batch_sizes": "1,0"})
    driver.run(params)  # runs inside the thread setting


def test_the_page_overrides_reach_the_loop_and_the_new_prior(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch_registries
) -> None:
    _import_attack_module(tmp_path, monkeypatch)
    info = data.dataset_info("mnist")
    images = _random_images(info, 1, seed=0)
    net = models.build_model("lenet", info, seed=0)
    namespace: dict[str, Any] = {
        "build_attack": registry.build_attack,
        "observation": fl.observe_fedsgd(
            net, images, torch.tensor([3]), num_classes=info.num_classes
        ),
    }
    exec(_code("in a driver or a notebook"), namespace)
    attack = namespace["attack"]
    assert attack.config.optim.max_iterations == 20
    assert [(p.name, p.weight) for p in attack.config.priors] == [
        ("tv", 1e-4),
        ("image_norm", 1e-3),
    ]
    assert isinstance(namespace["reconstruction"], Reconstruction)
    assert len(namespace["reconstruction"].history) <= 20


def test_the_scratch_registries_leave_the_real_ones_alone() -> None:
    # Runs after the tests above (file order): nothing of theirs is left.
    assert "mypaper" not in registry.attack_names()
    assert "image_norm" not in priors.PRIORS


def test_every_registered_attack_is_in_the_table_of_built_in_attacks() -> None:
    # The page: a new attack module adds its names to BUILTIN_MODULES, from
    # which the registry imports it on demand.
    package = ROOT / "gi_lib" / "attacks"
    registered = {}
    for path in sorted(package.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        for name in re.findall(r"@register_attack\(\s*\"(\w+)\"", source):
            registered[name] = f"gi_lib.attacks.{path.stem}"
    assert registered, "no module registers an attack"
    assert registry.BUILTIN_MODULES == registered


# --- the seed-list entry ------------------------------------------------------


def test_the_page_entry_puts_the_notebook_in_the_toc_and_the_seed_table() -> None:
    namespace: dict[str, Any] = {"Paper": Paper}
    entry = eval(_code("gi_lib/papers.py").split("\n", 1)[1], namespace)
    assert isinstance(entry, Paper) and entry.status == "supported"
    papers = (*PAPERS, entry)
    pages = [f"notebooks/{p.notebook}" for p in papers if p.notebook]
    toc = book.table_of_contents(papers, pages=pages)
    attacks = next(part for part in toc["parts"] if part["caption"] == "Attacks")
    assert attacks["chapters"][-1] == {"file": "notebooks/attacks/mypaper"}
    table = book.seed_table_markdown(papers, pages=pages)
    assert "| MyPaper |" in table
    assert "supported: {doc}`notebook </notebooks/attacks/mypaper>`" in table
    planned = dataclasses.replace(entry, notebook=None)
    assert planned.status == "planned"


def test_the_page_profile_entries_are_profile_files_entries() -> None:
    blocks = _blocks("yaml")
    assert [where.split(":")[0] for where, _ in blocks] == [
        "notebooks/profiles/smoke.yaml",
        "notebooks/profiles/paper.yaml",
    ]
    for where, code in blocks:
        assert (ROOT / where.split(":")[0]).is_file()
        content = yaml.safe_load(code)
        assert list(content) == ["attacks/mypaper"]
        # Names of the worked example's parameters cell.
        assert set(content["attacks/mypaper"]) <= {"num_trials", "max_iterations"}


# --- a new plaintext defense ----------------------------------------------------


def test_the_page_defense_changes_what_the_client_sends() -> None:
    namespace: dict[str, Any] = {}
    exec(_code("gi_lib/defenses/mypaper.py"), namespace)
    defense = namespace["SignOnly"](seed=0)
    info = data.dataset_info("mnist")
    images = _random_images(info, 2, seed=1)
    labels = torch.tensor([1, 7])
    net = models.build_model("lenet", info, seed=0)
    plain = fl.observe_fedsgd(net, images, labels, num_classes=10)
    signed = fl.observe_fedsgd(net, images, labels, num_classes=10, defense=defense)
    for sent, gradient in zip(signed.gradients, plain.gradients, strict=True):
        assert torch.equal(sent, gradient.sign())
    assert defense.describe() == "sign"


# --- a new aggregation protocol -------------------------------------------------


def _updates(count: int) -> list[tuple[torch.Tensor, ...]]:
    generator = torch.Generator().manual_seed(0)
    return [
        (torch.randn(3, 4, generator=generator), torch.randn(5, generator=generator))
        for _ in range(count)
    ]


def test_the_page_protocol_sums_exactly_and_the_server_sees_only_the_total() -> None:
    namespace: dict[str, Any] = {}
    exec(_code("gi_lib/defenses/myprotocol.py"), namespace)
    updates = _updates(4)
    result = namespace["ChainSum"]().run(updates)
    for got, want in zip(result.aggregate, fl.aggregate(updates), strict=True):
        assert torch.equal(got, want)
    assert result.survivors == (0, 1, 2, 3)
    view = result.transcript.view(SERVER)
    assert [(m.sender, m.kind) for m in view] == [("client 3", "sum")]
    assert result.transcript.bytes_sent("client 0") == 4 * (12 + 5)
    with pytest.raises(ProtocolAbort, match="client 2 got no partial sum"):
        namespace["ChainSum"]().run(updates, dropouts=DropoutSchedule({1: 0}))


# --- names and paths ------------------------------------------------------------


def _resolve(dotted: str) -> object:
    """The module or attribute ``dotted`` names (an ImportError or
    AttributeError if it does not exist)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ImportError(f"no module in {dotted}")


def _page_names() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    names = sorted(set(re.findall(r"\bgi_lib(?:\.\w+)+", text)))
    return [n for n in names if not any(p in n for p in PLACEHOLDERS)]


@pytest.mark.parametrize("dotted", _page_names())
def test_every_gi_lib_name_on_the_page_exists(dotted: str) -> None:
    assert _resolve(dotted) is not None


def _page_paths() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    spans = re.findall(r"`([^`\n]+)`", text)
    paths = {
        span
        for span in spans
        if re.fullmatch(r"(gi_lib|tests|notebooks|book)/[\w./-]*", span)
    }
    return sorted(p for p in paths if not any(h in p for h in PLACEHOLDERS))


def test_the_page_names_paths() -> None:
    assert len(_page_paths()) >= 10  # the pattern below still finds them


@pytest.mark.parametrize("path", _page_paths())
def test_every_path_on_the_page_exists(path: str) -> None:
    assert (ROOT / path).exists(), f"the page names {path}, which does not exist"


def test_the_page_is_in_the_book() -> None:
    assert PAGE.stem in book.HAND_WRITTEN_PAGES
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "book/adding-a-paper.md" in readme
