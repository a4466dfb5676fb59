"""How many threads numpy's BLAS uses, inside a block.

numpy's matrix products (the LWE scheme's limb products) run on OpenBLAS,
which starts one thread per core and ignores torch's thread setting. A
notebook's ``num_threads`` should hold for them too, and a timed party
should not be charged for BLAS threads spinning on a busy machine
(``time.process_time`` counts every thread). ``threadpoolctl`` is not a
dependency, so :func:`blas_threads` calls OpenBLAS's own setter through
ctypes; where no OpenBLAS is loaded (another BLAS, another platform) it
leaves the threads as they are.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np

# (setter, getter) names: numpy's bundled scipy-openblas (64-bit ints), then
# a system OpenBLAS.
_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)


def _candidates() -> list[str]:
    paths: list[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.split()[-1]
                if "openblas" in path.lower() and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "*openblas*"))):
        if path not in paths:
            paths.append(path)
    return paths


@cache
def _controls() -> tuple[object, object] | None:
    """OpenBLAS's (set, get) thread functions, or None where there is none."""
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for setter, getter in _SYMBOLS:
            if hasattr(lib, setter) and hasattr(lib, getter):
                set_threads, get_threads = getattr(lib, setter), getattr(lib, getter)
                set_threads.argtypes = [ctypes.c_int]
                get_threads.restype = ctypes.c_int
                return set_threads, get_threads
    return None


@contextmanager
def blas_threads(count: int) -> Iterator[None]:
    """Let OpenBLAS use ``count`` threads inside the block (restored after)."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}.")
    controls = _controls()
    if controls is None:
        yield
        return
    set_threads, get_threads = controls
    previous = int(get_threads())
    set_threads(count)
    try:
        yield
    finally:
        set_threads(previous)


def current_blas_threads() -> int | None:
    """OpenBLAS's current thread count (None where it is not found)."""
    controls = _controls()
    return None if controls is None else int(controls[1]())
