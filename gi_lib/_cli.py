"""The command-line shape shared by ``python -m gi_lib.runner``,
``python -m gi_lib.sweep`` and ``python -m gi_lib.deps``: each takes one
notebook source first; the runner and the sweep take ``-p NAME VALUE``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import yaml


def notebook_parser(
    module: str,
    description: str,
    *,
    parameters: str | None = None,
    output: str | None = None,
) -> argparse.ArgumentParser:
    """An argument parser for ``python -m gi_lib.<module> NOTEBOOK ...``.

    With ``parameters`` (the help text of ``-p``), the command runs notebooks:
    the parser also takes ``--profile``, ``--profiles-dir``, repeated
    ``-p NAME VALUE`` pairs (read them with :func:`parse_parameters`) and
    ``--verbose``. ``output`` is the help text of a required ``--output``.
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m gi_lib.{module}", description=description
    )
    parser.add_argument(
        "notebook", help="jupytext source, e.g. notebooks/attacks/dlg.py"
    )
    if parameters is not None:
        parser.add_argument("--profile", required=True, help="smoke, cpu or paper")
        parser.add_argument("--profiles-dir", help="default: notebooks/profiles")
        parser.add_argument(
            "-p",
            "--param",
            nargs=2,
            action="append",
            metavar=("NAME", "VALUE"),
            help=parameters,
        )
        parser.add_argument(
            "--verbose", action="store_true", help="show the traceback of a failure"
        )
    if output is not None:
        parser.add_argument("--output", required=True, help=output)
    return parser


def parse_parameters(pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs as parameters, each value read as YAML (as
    papermill's ``-p`` does: ``3`` is an int, ``true`` a bool)."""
    return {name: yaml.safe_load(value) for name, value in pairs or []}
