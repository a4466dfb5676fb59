"""The command-line shape shared by ``python -m gi_lib.runner`` and
``python -m gi_lib.deps``: both take one notebook source first."""

from __future__ import annotations

import argparse


def notebook_parser(module: str, description: str) -> argparse.ArgumentParser:
    """An argument parser for ``python -m gi_lib.<module> NOTEBOOK ...``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m gi_lib.{module}", description=description
    )
    parser.add_argument(
        "notebook", help="jupytext source, e.g. notebooks/attacks/dlg.py"
    )
    return parser
