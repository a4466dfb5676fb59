"""Atomic file writes: an interrupted run never leaves a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

try:  # POSIX; elsewhere a lock is a no-op and atomic renames alone protect a file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]
) -> Path:
    """Write ``path`` through a temporary file in the same folder, then rename.

    Args:
        path: destination file; its folder is created when missing.
        write: called with a binary file object opened on the temporary file.

    Returns:
        The destination path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file private (0600); give it the usual permissions.
        os.chmod(tmp_name, default_file_mode())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def default_file_mode() -> int:
    """Permissions a newly created file gets under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on ``<path>.lock`` while the block runs.

    Two processes that cache the same file (two notebooks of ``make -j N``
    training the same model, say) take this lock around "load it, or compute
    and write it": the second one waits, then finds the first one's file
    instead of computing it again. The lock is ``flock`` on a file beside
    ``path``, removed again by its holder on the way out (a waiter that then
    holds a removed file tries again on the new one), so a cache folder is
    left as it was. The kernel releases the lock when its holder exits, so a
    crashed run never blocks the next one. Where ``fcntl`` does not exist
    (Windows) the block runs unlocked: the atomic write of
    :func:`atomic_write` still keeps a reader from a half-written file.

    Yields:
        The lock file's path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.with_name(f"{target.name}.lock")
    if fcntl is None:  # pragma: no cover - Windows
        yield lock
        return
    while True:
        handle = open(lock, "a+b")  # noqa: SIM115 - closed below, after unlocking
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                current = os.stat(lock)
            except FileNotFoundError:
                current = None
            mine = os.fstat(handle.fileno())
            if current is not None and (current.st_dev, current.st_ino) == (
                mine.st_dev,
                mine.st_ino,
            ):
                break  # locked the file that is still in place
        except BaseException:
            handle.close()
            raise
        handle.close()  # its holder removed it meanwhile: lock the new one
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()
