"""gi_lib.deps: a notebook's gi_lib modules from the import graph, and make."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gi_lib import deps

ROOT = Path(__file__).resolve().parents[1]
GI_LIB = ROOT / "gi_lib"


def _names(files: list[Path], root: Path) -> set[str]:
    return {file.relative_to(root).as_posix() for file in files}


def test_experiment_import_reaches_its_attack_and_no_other(tmp_path: Path) -> None:
    notebook = tmp_path / "notebook.py"
    notebook.write_text(
        "# %%\nfrom gi_lib.experiments import dlg as experiment\n", encoding="utf-8"
    )
    found = _names(deps.dependencies(notebook, GI_LIB), ROOT)
    # experiments/dlg -> experiments/single_image -> attacks/dlg (and the
    # package __init__ files on the way).
    assert {
        "gi_lib/__init__.py",
        "gi_lib/experiments/__init__.py",
        "gi_lib/experiments/dlg.py",
        "gi_lib/experiments/single_image.py",
        "gi_lib/attacks/__init__.py",
        "gi_lib/attacks/dlg.py",
    } <= found
    # Other pages' drivers and attacks, and the book generator, are never
    # reached: the attack registry imports a paper's module only on demand.
    for unreached in (
        "experiments/rgap/__init__.py",
        "experiments/cafe/__init__.py",
        "attacks/rgap.py",
        "attacks/bn_prior.py",
        "book.py",
    ):
        assert f"gi_lib/{unreached}" not in found


def test_no_notebook_depends_on_the_book_generator() -> None:
    for notebook in sorted((ROOT / "notebooks").glob("*/*.py")):
        found = _names(deps.dependencies(notebook, GI_LIB), ROOT)
        assert "gi_lib/book.py" not in found, notebook
        driver = f"gi_lib/experiments/{notebook.stem}"  # a module or a package
        assert {f"{driver}.py", f"{driver}/__init__.py"} & found, notebook


def test_a_driver_package_brings_every_module_of_it() -> None:
    # A driver split into a package (gi_lib/experiments/he/...): touching any
    # of its modules reruns the notebook.
    packages = 0
    for notebook in sorted((ROOT / "notebooks").glob("*/*.py")):
        package = ROOT / "gi_lib" / "experiments" / notebook.stem
        if not package.is_dir():
            continue
        packages += 1
        found = _names(deps.dependencies(notebook, GI_LIB), ROOT)
        for module in package.glob("*.py"):
            assert module.relative_to(ROOT).as_posix() in found, (notebook, module)
    assert packages


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


SYNTHETIC = {
    # A package __init__ with a relative import: runs whenever pkg is imported.
    "pkg/__init__.py": "from .core import thing\n",
    "pkg/core.py": (
        "from typing import TYPE_CHECKING\n"
        "from . import util, VERSION_NAME\n"  # a module and a plain name
        "from .sub.leaf import f\n"
        "if TYPE_CHECKING:\n"
        "    from pkg import typing_only\n"
        "else:\n"
        "    from pkg import runtime_only\n"
        "thing = 1\n"
    ),
    "pkg/util.py": "def lazy():\n    import pkg.lazy\n",
    "pkg/lazy.py": "",
    "pkg/typing_only.py": "",
    "pkg/runtime_only.py": "",
    # Two dots from a package __init__: the parent package.
    "pkg/sub/__init__.py": "from .. import helpers\n",
    "pkg/sub/leaf.py": "from ..deep.inner import g\n",
    "pkg/helpers.py": "",
    "pkg/deep/__init__.py": "",
    "pkg/deep/inner.py": "",
    "pkg/deep/other.py": "",
    "pkg/unused.py": "import pkg.helpers\n",
    "pkg/sub/unused.py": "",
}


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            "import pkg.sub.leaf\n",
            {
                "pkg/__init__.py",
                "pkg/core.py",
                "pkg/util.py",
                "pkg/lazy.py",
                "pkg/runtime_only.py",
                "pkg/sub/__init__.py",
                "pkg/sub/leaf.py",
                "pkg/helpers.py",
                "pkg/deep/__init__.py",
                "pkg/deep/inner.py",
            },
        ),
        # `from pkg.deep import other`: other is a submodule; the package
        # __init__ files of pkg and pkg.deep run too.
        (
            "import numpy\nfrom pkg.deep import other\n",
            {
                "pkg/__init__.py",
                "pkg/core.py",
                "pkg/util.py",
                "pkg/lazy.py",
                "pkg/runtime_only.py",
                "pkg/sub/__init__.py",
                "pkg/sub/leaf.py",
                "pkg/helpers.py",
                "pkg/deep/__init__.py",
                "pkg/deep/inner.py",
                "pkg/deep/other.py",
            },
        ),
        ("import numpy\nfrom os import path\n", set()),
    ],
)
def test_synthetic_package(tmp_path: Path, script: str, expected: set[str]) -> None:
    _write(tmp_path, SYNTHETIC)
    (tmp_path / "script.py").write_text(script, encoding="utf-8")
    found = deps.dependencies(tmp_path / "script.py", tmp_path / "pkg")
    assert _names(found, tmp_path) == expected


def test_direct_imports_of_a_package_init_resolve_relative_to_it(
    tmp_path: Path,
) -> None:
    _write(tmp_path, SYNTHETIC)
    package = deps.Package(tmp_path / "pkg")
    assert deps.direct_imports(
        tmp_path / "pkg" / "sub" / "__init__.py", package, module="pkg.sub"
    ) == {"pkg", "pkg.helpers"}
    assert deps.direct_imports(
        tmp_path / "pkg" / "sub" / "leaf.py", package, module="pkg.sub.leaf"
    ) == {"pkg", "pkg.deep", "pkg.deep.inner"}


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path, {"pkg/__init__.py": "", "script.py": "import pkg\nx = (\n"})
    with pytest.raises(deps.DepsError, match=r"script\.py: .* line 2"):
        deps.dependencies(tmp_path / "script.py", tmp_path / "pkg")


def test_make_rule_lists_each_prerequisite_with_an_empty_rule() -> None:
    assert deps.make_rule("out/a.ipynb", ["gi_lib/x.py", "gi_lib/y.py"]) == (
        "out/a.ipynb: gi_lib/x.py gi_lib/y.py\n\ngi_lib/x.py:\ngi_lib/y.py:\n"
    )
    with pytest.raises(deps.DepsError, match="whitespace"):
        deps.make_rule("my out/a.ipynb", [])


def test_cli_writes_the_dependency_file(tmp_path: Path) -> None:
    output = tmp_path / "deps" / "dlg.d"
    code = deps.main(
        [
            str(ROOT / "notebooks" / "attacks" / "dlg.py"),
            *("--target", "out/dlg.ipynb", "--output", str(output)),
            *("--package", str(GI_LIB)),
        ]
    )
    assert code == 0
    first, *rest = output.read_text(encoding="utf-8").splitlines()
    assert first.startswith("out/dlg.ipynb: ")
    assert f"{GI_LIB / 'attacks' / 'dlg.py'}:" in rest


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The Makefile, gi_lib and the notebooks, with every file an hour old."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shutil.copy2(ROOT / "Makefile", tmp_path / "Makefile")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(GI_LIB, tmp_path / "gi_lib", ignore=ignore)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=ignore)
    (tmp_path / "book").mkdir()
    old = time.time() - 3600
    for path in tmp_path.rglob("*"):
        os.utime(path, (old, old))
    return tmp_path


def _question(repo: Path, target: str) -> subprocess.CompletedProcess[str]:
    """``make -q target``: exit 0 when up to date, 1 when it would run."""
    return subprocess.run(
        ["make", "-q", target, "PROFILE=smoke", f"PY={sys.executable}"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_reruns_a_notebook_only_for_modules_it_imports(repo_copy: Path) -> None:
    target = "_build/smoke/notebooks/attacks/dlg.ipynb"
    assert _question(repo_copy, target).returncode == 1  # never ran
    assert (repo_copy / "_build/smoke/deps/attacks/dlg.d").is_file()

    # A run half an hour ago, after every source changed.
    executed = repo_copy / target
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.write_text("{}", encoding="utf-8")
    then = time.time() - 1800
    os.utime(executed, (then, then))
    assert _question(repo_copy, target).returncode == 0

    now = time.time()
    for unrelated in ("gi_lib/experiments/rgap/report.py", "gi_lib/book.py"):
        os.utime(repo_copy / unrelated, (now, now))
        answer = _question(repo_copy, target)
        assert answer.returncode == 0, (unrelated, answer.stdout, answer.stderr)

    os.utime(repo_copy / "gi_lib/attacks/dlg.py", (now, now))
    assert _question(repo_copy, target).returncode == 1


def test_make_survives_a_deleted_module(repo_copy: Path) -> None:
    target = "_build/smoke/notebooks/attacks/dlg.ipynb"
    _question(repo_copy, target)  # writes the dependency files
    (repo_copy / "gi_lib/plots.py").unlink()
    answer = _question(repo_copy, target)
    assert "No rule to make target" not in answer.stderr
    assert answer.returncode == 1  # out of date (its run will then fail)


def test_make_starts_the_longest_notebook_first(repo_copy: Path) -> None:
    # Under `make -j N` jobs start in prerequisite order: the evaluation page
    # (the cpu book's longest) must not be left to run alone at the end.
    dry = subprocess.run(
        ["make", "-n", "notebooks", "PROFILE=smoke", f"PY={sys.executable}"],
        cwd=repo_copy,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    started = re.findall(r"running notebooks/(\S+)\.py", dry.stdout)
    sources = sorted(
        str(path.relative_to(repo_copy / "notebooks").with_suffix(""))
        for path in (repo_copy / "notebooks").glob("*/*.py")
    )
    assert sorted(started) == sources
    assert started[0] == "evaluation/attacks_vs_defenses"
