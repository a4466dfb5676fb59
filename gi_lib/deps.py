"""Which gi_lib modules a notebook runs: a make dependency file from imports.

Make reruns an executed notebook when something it depends on changed. This
module finds the library files a notebook source reaches through its imports,
transitively and statically (the source is parsed with :mod:`ast`, nothing is
imported), and writes them as a make rule, as ``gcc -MMD -MP`` does for C::

    _build/cpu/notebooks/attacks/dlg.ipynb: gi_lib/__init__.py gi_lib/attacks/base.py
    gi_lib/__init__.py:
    gi_lib/attacks/base.py:

The empty rules let make go on when a listed module is deleted. Imports
anywhere in a file count, inside functions too, so the list errs on the side
of rerunning; only the body of ``if TYPE_CHECKING:``, which never runs, is
skipped. A module reached only through ``importlib`` or a string is not seen.

Example::

    python -m gi_lib.deps notebooks/attacks/dlg.py \\
        --target _build/cpu/notebooks/attacks/dlg.ipynb \\
        --output _build/cpu/deps/attacks/dlg.d
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from gi_lib._cli import notebook_parser
from gi_lib._io import atomic_write_text

PACKAGE = "gi_lib"


class DepsError(Exception):
    """A source that cannot be analysed; the message says which and why."""


class Package:
    """The modules of one package on disk, by dotted name.

    Args:
        directory: the package's folder (holding ``__init__.py``); its name is
            the package's import name.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.name = self.directory.name
        if not (self.directory / "__init__.py").is_file():
            raise DepsError(
                f"{self.directory} is not a package: it has no __init__.py. Pass "
                "the folder of the library (e.g. --package gi_lib)."
            )

    def file_of(self, module: str) -> Path | None:
        """The file of a dotted module name of this package, or None."""
        parts = module.split(".")
        if parts[0] != self.name:
            return None
        base = self.directory.joinpath(*parts[1:])
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
        if len(parts) > 1 and base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        return None

    def is_package(self, module: str) -> bool:
        """Whether a module of this package is itself a package (a folder)."""
        found = self.file_of(module)
        return found is not None and found.name == "__init__.py"


def _with_parents(module: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing a module imports these."""
    parts = module.split(".")
    return [".".join(parts[: index + 1]) for index in range(len(parts))]


def _relative_base(module: str | None, is_package: bool, level: int) -> str | None:
    """The package a relative import of ``level`` dots refers to, or None."""
    if module is None:
        return None  # a script (the notebook) has no package
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    if level - 1 > len(parts) - 1:
        return None  # beyond the top-level package: an error at run time
    return ".".join(parts[: len(parts) - (level - 1)])


def _is_type_checking(test: ast.expr) -> bool:
    """Whether an ``if`` tests ``TYPE_CHECKING`` (or ``typing.TYPE_CHECKING``)."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))


def direct_imports(
    path: Path, package: Package, *, module: str | None = None
) -> set[str]:
    """The modules of ``package`` that one file imports itself.

    Handles ``import p.x``, ``from p import x`` (``x`` a module or a name),
    ``from p.x import y`` (``y`` may be a submodule), relative imports, and
    the package ``__init__`` files that importing a submodule runs.

    Args:
        path: a Python source (a module of the package or a notebook source).
        package: the package whose modules count.
        module: the dotted name of ``path`` when it is a module of ``package``
            (needed to resolve relative imports); None for a script.

    Raises:
        DepsError: the file does not parse.
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as error:
        raise DepsError(
            f"Cannot read the imports of {path}: {error.msg} on line "
            f"{error.lineno}. Fix the syntax error (a notebook source must be "
            "a jupytext percent file whose magics are commented out)."
        ) from error
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_with_parents(alias.name))
        else:
            if node.level:
                base = _relative_base(module, is_package, node.level)
                if base is None:
                    continue
                origin = f"{base}.{node.module}" if node.module else base
            else:
                origin = node.module or ""
            found.update(_with_parents(origin))
            for alias in node.names:
                if alias.name != "*":
                    found.add(f"{origin}.{alias.name}")
    return {name for name in found if package.file_of(name) is not None}


def dependencies(
    source: str | os.PathLike[str], package: Package | str | os.PathLike[str]
) -> list[Path]:
    """The files of ``package`` that ``source`` imports, directly or not.

    Args:
        source: a notebook source (or any script).
        package: the library, or the path of its folder.

    Returns:
        The module files, sorted (paths as built from the package's folder).

    Raises:
        DepsError: a file on the way does not parse.
    """
    if not isinstance(package, Package):
        package = Package(package)
    seen: set[str] = set()
    pending = sorted(direct_imports(Path(source), package))
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        file = package.file_of(name)
        assert file is not None  # direct_imports keeps only resolvable names
        pending.extend(sorted(direct_imports(file, package, module=name) - seen))
    return sorted({package.file_of(name) for name in seen})  # type: ignore[misc]


def make_rule(target: str, prerequisites: Iterable[str]) -> str:
    """A make rule ``target: prerequisites`` and an empty rule per prerequisite.

    Raises:
        DepsError: a path holds whitespace, which make cannot list.
    """
    names = list(prerequisites)
    for name in [target, *names]:
        if any(character.isspace() for character in name):
            raise DepsError(
                f"The path {name!r} contains whitespace, which a make rule cannot "
                "hold; move the repository to a path without spaces."
            )
    lines = [f"{target}: {' '.join(names)}".rstrip(), ""]
    lines += [f"{name}:" for name in names]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = notebook_parser(
        "deps", "Write the make dependencies of a notebook on gi_lib modules."
    )
    parser.add_argument("--target", required=True, help="the executed notebook")
    parser.add_argument("--output", help="the .d file to write (default: stdout)")
    parser.add_argument(
        "--package", default=PACKAGE, help="the library's folder (default: gi_lib)"
    )
    args = parser.parse_args(argv)
    try:
        files = dependencies(args.notebook, args.package)
        rule = make_rule(args.target, (file.as_posix() for file in files))
    except (DepsError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.output:
        atomic_write_text(args.output, rule)
    else:
        sys.stdout.write(rule)
    return 0


if __name__ == "__main__":
    sys.exit(main())
