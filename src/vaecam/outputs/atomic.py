"""Atomic file writes with one-line errors.

A file is written to a temporary name in its own folder, flushed to disk, and renamed over the
target in one ``os.replace``: a crash, a kill or a full disk leaves the previous version intact.
Temporary files are named ``.<name>.<random>.tmp``; :func:`remove_stale_temporaries` deletes the
ones a killed process left behind. Any ``OSError`` becomes an :class:`OutputError` that names the
file and the reason (``No space left on device``, ``Permission denied``...).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from vaecam.errors import VaecamError


def _file_mode() -> int:
    """0666 minus the process umask: the mode ``open()`` would give a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


class OutputError(VaecamError):
    """A result file or folder could not be written."""


def _reason(exc: OSError) -> str:
    return exc.strerror or " ".join(str(exc).split()) or type(exc).__name__


@contextmanager
def writing(path: Path, what: str = "file") -> Iterator[None]:
    """Turn an ``OSError`` raised inside the block into a one-line :class:`OutputError`."""
    try:
        yield
    except OSError as exc:
        raise OutputError(
            f"could not write {what} {path} ({_reason(exc)}); free disk space or choose a "
            "writable --out, then run the command again"
        ) from exc


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Write ``path`` atomically: ``write(handle)`` fills a temporary file that then replaces it."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, _FILE_MODE)  # mkstemp's 0600 would hide results from other users
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write a text file (UTF-8) atomically."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda handle: handle.write(data))


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files that an interrupted atomic write left in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(".*.tmp") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
