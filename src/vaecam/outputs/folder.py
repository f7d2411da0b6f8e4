"""Output folders that vaecam owns: nothing of the user's is ever deleted or overwritten.

A command claims its ``--out`` folder with :class:`OutputFolder`. The claim

* refuses a path that is a file, or that contains or lies inside one of the command's inputs
  (data root, checkpoint): writing there could destroy what the command is about to read;
* takes the folder's lock (:class:`~vaecam.outputs.lock.FolderLock`), so a second command
  writing into the same folder fails at once;
* writes a marker file, ``.vaecam.json``, naming the command and, when the command ends however
  it ends, listing every file in the folder: all of them were written by vaecam, because a claim
  only succeeds on a new or empty folder or on one that the same command wrote before;
* with ``overwrite``, deletes exactly the files that the marker lists, and only when the marker
  names the same command and the folder holds nothing else; with ``keep`` (resume, reuse of
  finished stages) it keeps them.

Everything is checked before anything is touched. Under multi-process training (DDP) only the
first process claims; the others (:func:`is_child_rank`) just use the folder.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from vaecam.errors import ConfigError
from vaecam.outputs.atomic import atomic_write_text, writing
from vaecam.outputs.lock import LOCK_NAME, FolderLock

MARKER = ".vaecam.json"
_OWN = {MARKER, LOCK_NAME}


def is_child_rank() -> bool:
    """True in the extra processes of a multi-process (DDP) launch, which must not claim."""
    return any(int(os.environ.get(name, "0") or 0) > 0 for name in ("LOCAL_RANK", "NODE_RANK"))


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative, sorted), except the folder's own marker and lock."""
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            rel = (Path(root) / name).relative_to(folder).as_posix()
            if rel not in _OWN:
                found.append(rel)
    return sorted(found)


def _in_nested_output(folder: Path, rel: str) -> bool:
    """Whether file ``rel`` lies inside a sub-folder of ``folder`` that a vaecam command owns
    (a run folder trained into it, a generated dataset...)."""
    parent = (folder / rel).parent
    while parent != folder and folder in parent.parents:
        if (parent / MARKER).is_file():
            return True
        parent = parent.parent
    return False


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a vaecam output folder, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "command" in data else None


def _overlap(out: Path, inputs: Sequence[Path]) -> str | None:
    """A one-line reason why ``out`` must not be written, if it holds or is inside an input."""
    for raw in inputs:
        inp = Path(raw).expanduser().resolve()
        if out == inp or out in inp.parents:
            return f"--out {out} contains the input {inp}"
        if inp in out.parents:
            return f"--out {out} is inside the input {inp}"
    return None


class OutputFolder:
    """Claim ``path`` for ``command`` (e.g. ``"localize mvtec"``) inside a ``with`` block.

    Args:
        path: the output folder (created if missing).
        command: the vaecam command writing it; recorded in the marker.
        inputs: data folders and files the command reads; ``path`` may neither contain nor lie
            inside any of them.
        overwrite: replace an earlier result of the same command (its listed files only).
        keep: continue an earlier result of the same command (resume, reuse of finished work).
    """

    def __init__(
        self,
        path: Path,
        command: str,
        inputs: Sequence[Path] = (),
        overwrite: bool = False,
        keep: bool = False,
    ):
        self.path = Path(path).expanduser().resolve()
        self.command = command
        self.inputs = [Path(p) for p in inputs if p is not None]
        self.overwrite = overwrite
        self.keep = keep
        self._lock = FolderLock(self.path)
        self._claimed = False
        self._foreign: set[str] = set()

    # ------------------------------------------------------------------------------ checks
    def _check(self) -> list[str]:
        """Validate the claim without touching anything; returns the files to delete."""
        out = self.path
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file; choose a folder")
        reason = _overlap(out, self.inputs)
        if reason:
            raise ConfigError(f"{reason}; choose an output folder outside your data and "
                              "checkpoints")
        if not out.is_dir():
            return []
        existing = _files(out)
        if not existing:
            return []
        marker = read_marker(out)
        if marker is not None and marker["command"] != self.command:
            raise ConfigError(
                f"{out} holds the results of 'vaecam {marker['command']}', not of "
                f"'vaecam {self.command}'; choose another --out"
            )
        listed = set(marker.get("files", [])) if marker else set()
        foreign = [f for f in existing if f not in listed and not _in_nested_output(out, f)]
        self._foreign = set(foreign)  # kept by ``keep`` but never listed as vaecam's
        if foreign and not self.keep:
            move = "move them away or " if marker else ""
            raise ConfigError(
                f"{out} holds files vaecam did not write (e.g. '{foreign[0]}'); {move}choose "
                "another --out (vaecam never deletes files it did not write)"
            )
        if self.keep:
            return []
        if not self.overwrite:
            whose = f"'vaecam {self.command}'" if marker else "other vaecam commands"
            raise ConfigError(
                f"{out} already holds the results of {whose}; pass --overwrite to replace them, "
                "or choose another --out"
            )
        return existing

    # ------------------------------------------------------------------------------ claim
    def __enter__(self) -> OutputFolder:
        if is_child_rank():
            self.path.mkdir(parents=True, exist_ok=True)
            return self
        doomed = self._check()
        self._lock.acquire()
        try:
            doomed = self._check()  # again under the lock: another command may have written
            for rel in doomed:
                (self.path / rel).unlink(missing_ok=True)
            self._remove_empty_folders()
            self._write_marker()
        except BaseException:
            self._lock.release()
            raise
        self._claimed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._claimed:
            return
        try:
            if exc_type is None:
                self._write_marker()
            else:  # record what was written even when the command failed
                try:
                    self._write_marker()
                except Exception:  # noqa: BLE001 - the original error matters more
                    pass
        finally:
            self._lock.release()
            self._claimed = False

    def _remove_empty_folders(self) -> None:
        for root, dirs, _ in os.walk(self.path, topdown=False):
            for name in dirs:
                folder = Path(root) / name
                if not any(folder.iterdir()):
                    folder.rmdir()

    def _write_marker(self) -> None:
        from vaecam import __version__

        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        previous = read_marker(self.path) or {}
        record = {
            "vaecam": __version__,
            "command": self.command,
            "created": previous.get("created", now) if previous.get("command") == self.command
            else now,
            "updated": now,
            "files": [f for f in _files(self.path) if f not in self._foreign],
        }
        with writing(self.path / MARKER, "marker file"):
            atomic_write_text(self.path / MARKER, json.dumps(record, indent=2) + "\n")


def adopt(file: Path) -> None:
    """Record ``file``, written by vaecam outside a claim (a score beside a run), in the marker
    of every vaecam folder that holds it, so a later ``--overwrite`` knows it is vaecam's."""
    file = Path(file).resolve()
    for folder in file.parents:
        marker = read_marker(folder)
        if marker is None:
            continue
        rel = file.relative_to(folder).as_posix()
        if rel not in marker.get("files", []):
            marker["files"] = sorted({*marker.get("files", []), rel})
            atomic_write_text(folder / MARKER, json.dumps(marker, indent=2) + "\n")
