"""Atomic file writes with one-line errors.

A file is written to a temporary name in its own folder, flushed to disk, and renamed over the
target in one ``os.replace``: a crash, a kill or a full disk leaves the previous version intact.
Temporary files are named ``.<name>.<random>.tmp``; :func:`remove_stale_temporaries` deletes the
ones a killed process left behind. Any ``OSError`` becomes an :class:`OutputError` that names the
file and the reason (``No space left on device``, ``Permission denied``...).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
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


_ADVICE = {
    errno.ENOSPC: "free disk space or choose an --out on another disk",
    errno.EDQUOT: "free space within your disk quota or choose an --out on another disk",
    errno.EACCES: "choose a writable --out or fix the folder's permissions",
    errno.EPERM: "choose a writable --out or fix the folder's permissions",
    errno.EROFS: "the disk is read-only; choose an --out on a writable disk",
    errno.ENOTDIR: "a part of that path is a file, not a folder; choose another --out",
    errno.EISDIR: "that path is a folder; choose another name",
    errno.ENAMETOOLONG: "choose a shorter --out path",
    errno.ENOENT: "check that the path exists",
}


def os_error_line(exc: OSError, doing: str | None = None) -> str:
    """One line for a failed file operation: what failed, the system's reason, what to do."""
    target = exc.filename if exc.filename is not None else "a file"
    doing = doing or "read or write"
    advice = _ADVICE.get(exc.errno or 0, "check the path and its disk")
    return f"could not {doing} {target} ({_reason(exc)}); {advice}, then run the command again"


@contextmanager
def writing(path: Path, what: str = "file") -> Iterator[None]:
    """Turn an ``OSError`` raised inside the block into a one-line :class:`OutputError`."""
    try:
        yield
    except OSError as exc:
        exc.filename = path
        raise OutputError(os_error_line(exc, f"write {what}")) from exc


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


def atomic_share(source: Path, target: Path) -> Path:
    """Make ``target`` hold ``source``'s bytes, atomically, without a second copy on disk.

    ``target`` becomes a hard link to ``source``'s file; a later :func:`atomic_write` of
    ``source`` replaces only that name, so ``target`` keeps these bytes. Where the file system
    has no hard links, the bytes are copied.
    """
    source, target = Path(source), Path(target)
    with writing(target):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.link(source, tmp)
        except OSError:
            with open(source, "rb") as data:
                return atomic_write(target, lambda handle: shutil.copyfileobj(data, handle))
        os.replace(tmp, target)
    return target


def atomic_write_text(path: Path, text: str) -> Path:
    """Write a text file (UTF-8) atomically."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda handle: handle.write(data))


# ``tempfile.mkstemp`` names: the prefix, 8 random characters, the suffix.
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the ``.<name>.<random>.tmp`` files an interrupted atomic write left in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(".*.tmp")
             if _TEMPORARY.fullmatch(p.name) and p.is_file() and not p.is_symlink()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
