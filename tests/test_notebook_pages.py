"""Every notebook page shows how its result is produced, and hides only bookkeeping.

A reader of the executed book sees, in each notebook: a worked example that
observes a client and runs the page's attack (built by name with
``build_attack``, or the paper's own entry point where the attack runs
alongside training), scores it, and then the visible
``result = experiment.run(params)``. Cells removed from the page hold only
imports and the page's bookkeeping (:class:`gi_lib.notebook.Page`). The
notebook that the book's page "Adding a paper" shows a contributor follows
the same rules.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    path.relative_to(ROOT / "notebooks").with_suffix("").as_posix()
    for path in (ROOT / "notebooks").glob("*/*.py")
)
# The notebook on the page "Adding a paper": its Python block for this file.
SKELETON = "book/adding-a-paper.md"
SKELETON_FILE = "notebooks/attacks/mypaper.py"
# Tags that take a cell's code off the page (hide-input only collapses it).
REMOVED = {"remove-cell", "remove-input"}
HIDDEN = REMOVED | {"hide-input", "hide-cell"}
# How a page's worked example calls its attack: by name, except CAFE, which
# runs alongside training, one update per step.
ATTACK_CALLS = {"attacks/cafe": "CAFE"}
# What the client observation must show of the page's threat model.
OBSERVE_CALLS = {"observe_fedsgd", "observe", "VerticalTraining"}
THREAT_MODEL_FLAGS = {
    "attacks/dlg": {"reveal_labels"},
    "attacks/idlg": {"reveal_labels"},
    "attacks/inverting_gradients": {"reveal_labels", "model_mode"},
    "attacks/gradinversion": {"reveal_labels", "model_mode"},
    "attacks/gias": {"reveal_labels"},
    "defenses/pruning": {"defense"},
    "defenses/dpsgd": {"defense"},
    "defenses/mixup": {"defense"},
    "defenses/instahide": {"defense"},
    "defenses/he": {"reveal_labels"},
    "defenses/secagg": set(),
    "defenses/lightsecagg": {"reveal_labels"},
    "defenses/fastsecagg": {"reveal_labels"},
    "evaluation/aggregation_leakage": {"reveal_labels"},
    "evaluation/dask_sweep": {"reveal_labels"},
    "evaluation/flower": set(),
    "evaluation/attacks_vs_defenses": {
        "model_mode",
        "reveal_labels",
        "reveal_bn_statistics",
    },
    SKELETON: {"reveal_labels"},
}
PAGES = [*NOTEBOOKS, SKELETON]


def skeleton_source() -> str:
    """The notebook source that the page "Adding a paper" shows."""
    text = (ROOT / SKELETON).read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S)
    found = [b for b in blocks if b.splitlines()[0] == f"# {SKELETON_FILE}"]
    assert len(found) == 1, f"{SKELETON} shows no (or several) {SKELETON_FILE}"
    return found[0].split("\n", 1)[1]


def _code_cells(key: str) -> list[tuple[set[str], ast.Module]]:
    """``(tags, parsed source)`` of the notebook's code cells, in order."""
    if key == SKELETON:
        notebook = jupytext.reads(skeleton_source(), fmt="py:percent")
    else:
        notebook = jupytext.read(ROOT / "notebooks" / f"{key}.py")
    return [
        (set(cell.metadata.get("tags", [])), ast.parse(cell.source))
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _name(call: ast.Call) -> str:
    """The called function's own name: ``f`` of ``f(...)`` and ``a.b.f(...)``."""
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _visible(key: str) -> list[ast.Module]:
    return [tree for tags, tree in _code_cells(key) if not tags & HIDDEN]


def test_every_notebook_is_checked() -> None:
    assert len(NOTEBOOKS) >= 10
    assert set(THREAT_MODEL_FLAGS) | {"attacks/rgap", "attacks/cafe"} == set(PAGES)


@pytest.mark.parametrize("key", PAGES)
def test_the_worked_example_observes_a_client_attacks_and_scores(key: str) -> None:
    attack_call = ATTACK_CALLS.get(key, "build_attack")
    examples = [
        tree
        for tree in _visible(key)
        if any(_name(c) == attack_call for c in _calls(tree))
    ]
    assert examples, f"{key}: no visible cell calls {attack_call}(...)"
    calls = [c for tree in examples for c in _calls(tree)]
    names = {_name(c) for c in calls}
    assert names & OBSERVE_CALLS, f"{key}: the example observes no client"
    assert "psnr" in names, f"{key}: the example does not score its reconstruction"
    assert "print" in names, f"{key}: the example does not show its score"
    keywords = {k.arg for c in calls for k in c.keywords}
    missing = THREAT_MODEL_FLAGS.get(key, set()) - keywords
    assert not missing, f"{key}: the example hides the threat model's {missing}"


@pytest.mark.parametrize("key", PAGES)
def test_the_run_is_visible(key: str) -> None:
    runs = [
        tree
        for tree in _visible(key)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and ast.unparse(node) == "result = experiment.run(params)"
    ]
    assert runs, f"{key}: no visible `result = experiment.run(params)` cell"
    checks = [
        tree
        for tree in _visible(key)
        if "params = page.check(globals())" in ast.unparse(tree)
    ]
    assert checks, f"{key}: the checked parameters are not shown being made"


def _calls_nothing_but_globals(call: ast.Call) -> bool:
    """Whether the call's arguments call nothing but ``globals()``."""
    arguments = [*call.args, *(k.value for k in call.keywords)]
    inner = [n for a in arguments for n in ast.walk(a) if isinstance(n, ast.Call)]
    return all(_name(n) == "globals" for n in inner)


def _is_bookkeeping(statement: ast.stmt) -> bool:
    """An import, ``page = Page(...)`` or a call of the page's own methods."""
    if isinstance(statement, ast.Import | ast.ImportFrom):
        return True
    if not isinstance(statement, ast.Assign | ast.Expr):
        return False
    call = statement.value
    if not isinstance(call, ast.Call) or not _calls_nothing_but_globals(call):
        return False
    if isinstance(statement, ast.Assign) and _name(call) == "Page":
        return [ast.unparse(t) for t in statement.targets] == ["page"]
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "page"
    )


@pytest.mark.parametrize("key", PAGES)
def test_removed_cells_hold_only_bookkeeping(key: str) -> None:
    for tags, tree in _code_cells(key):
        if tags & REMOVED:
            for statement in tree.body:
                assert _is_bookkeeping(statement), (
                    f"{key}: a removed cell hides `{ast.unparse(statement)}`; "
                    "show it, or move plotting to a hide-input cell"
                )


def test_the_bookkeeping_rule_rejects_hidden_work() -> None:
    hidden = [
        "result = experiment.run(params)",
        "attack = build_attack('dlg')",
        "observation = fl.observe_fedsgd(net, x, y, num_classes=10)",
        "glue('fig', experiment.figure(result), display=False)",
        "page.finish(experiment.run(params), rows)",
        "params = experiment.check(globals())",
    ]
    for source in hidden:
        assert not _is_bookkeeping(ast.parse(source).body[0]), source
    kept = [
        "from gi_lib.notebook import Page",
        "page = Page(experiment, globals())",
        "page.finish(result, rows)",
        "params = page.check(globals())",
    ]
    for source in kept:
        assert _is_bookkeeping(ast.parse(source).body[0]), source


@pytest.mark.parametrize("key", PAGES)
def test_the_claims_are_shown_and_the_page_says_how_long_it_ran(key: str) -> None:
    shown = [
        tree
        for tree in _visible(key)
        if "claims = experiment.claims(result)" in ast.unparse(tree)
        and any(_name(c) == "claims_table" for c in _calls(tree))
    ]
    assert shown, f"{key}: no visible cell computes and shows the claims table"
    finishes = [
        (tags, ast.unparse(tree))
        for tags, tree in _code_cells(key)
        if "page.finish(" in ast.unparse(tree)
    ]
    assert [source for _, source in finishes] == ["page.finish(result, rows, claims)"]
    # Its input is hidden, its output (how long the page ran) is shown.
    assert finishes[0][0] == {"remove-input"}, f"{key}: tag the finish remove-input"
