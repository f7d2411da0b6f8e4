"""One writer per output folder: an advisory lock held for the life of a command.

The lock is ``fcntl.flock`` on ``<folder>/.vaecam.lock``; the operating system releases it when
the process ends however it ends, so a killed run never leaves a stale lock behind, and a command
that ends normally or with an error deletes the file too. A second command that tries to write
into the same folder fails at once with a one-line error naming the process that holds it.
(Platforms without ``fcntl`` run unlocked.)
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from vaecam.errors import VaecamError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".vaecam.lock"


class FolderBusyError(VaecamError):
    """Another vaecam command is writing into the folder."""


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


class FolderLock:
    """Exclusive, non-blocking lock on a folder (created if missing) for a ``with`` block."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        from vaecam.outputs.atomic import writing

        while True:
            with writing(self.path, "lock file"):
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if fcntl is None:
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise FolderBusyError(
                    f"another vaecam command (pid {holder}) is writing into {self.folder}; wait "
                    "for it to finish or choose another --out"
                ) from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder deleted the file as we opened it: lock the new one
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Delete the lock file, then drop the lock (closing the descriptor drops the flock)."""
        if self._fd is not None:
            if _same_file(self._fd, self.path):
                self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
