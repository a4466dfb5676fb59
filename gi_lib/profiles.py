"""Where the run profiles are: one ``<name>.yaml`` per profile.

The profile files are the one source of the profile names: the runner reads
them, and a notebook's ``profile`` parameter accepts exactly their names.
This module imports nothing heavy, so the runner stays quick to start.
"""

from __future__ import annotations

import os
from pathlib import Path

PROFILES_DIR = Path(__file__).resolve().parents[1] / "notebooks" / "profiles"
"""The repository's ``notebooks/profiles`` folder."""


def profile_names(
    directory: str | os.PathLike[str] | None = None,
) -> tuple[str, ...]:
    """Names of the profiles defined in ``directory`` (``<name>.yaml``), sorted.

    Args:
        directory: the folder holding the profile files; defaults to
            :data:`PROFILES_DIR`.
    """
    folder = Path(directory) if directory is not None else PROFILES_DIR
    return tuple(sorted(path.stem for path in folder.glob("*.yaml")))
