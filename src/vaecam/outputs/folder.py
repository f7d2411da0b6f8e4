"""Output folders that vaecam owns: nothing of the user's is ever deleted or overwritten.

A command claims its ``--out`` folder with :class:`OutputFolder`. The claim

* refuses a path that is a file, lies under a file, is not valid UTF-8, or contains or lies
  inside one of the command's inputs (data root, checkpoint): writing there could destroy what
  the command is about to read;
* takes the folder's lock (:class:`~vaecam.outputs.lock.FolderLock`), so a second command
  writing into the same folder fails at once;
* writes a marker file, ``.vaecam.json`` (the folder's manifest), at once: it names the command
  and lists what was in the folder before that was not vaecam's (``kept``). When the command
  ends, however it ends, the marker lists every file (``files``) and sub-folder (``folders``) the
  command wrote; a command killed before that (``kill -9``, power loss) leaves the marker in the
  ``writing`` state, and then whatever appeared in the folder since it started, minus ``kept``,
  counts as its own;
* with ``overwrite``, deletes exactly the files that the marker lists and then the listed
  sub-folders left empty, only when the marker names the same command and the folder holds no
  other loose file; with ``keep`` (resume, reuse of finished stages) it keeps them.

Sub-folders vaecam did not create are never removed (an empty folder of the user's, a symbolic
link), and a sub-folder holding another command's output (its own marker, not created by this
command) is left alone entirely. A command that fails before writing any file leaves nothing
behind: no marker, no lock, no folder it created. Everything is checked before anything is
touched. Under multi-process training (DDP) only the first process claims; the others
(:func:`is_child_rank`) just use the folder.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from vaecam.errors import ConfigError
from vaecam.outputs.atomic import atomic_write_text, writing
from vaecam.outputs.lock import LOCK_NAME, FolderLock

MARKER = ".vaecam.json"
_WRITING, _CLOSED = "writing", "closed"


def is_child_rank() -> bool:
    """True in the extra processes of a multi-process (DDP) launch, which must not claim."""
    return any(int(os.environ.get(name, "0") or 0) > 0 for name in ("LOCAL_RANK", "NODE_RANK"))


def _walk(folder: Path, is_other_output: Callable[[str], bool]) -> tuple[set[str], set[str]]:
    """(files, sub-folders) under ``folder``, as relative paths, except its own marker and every
    lock file. Symbolic links to folders are listed as folders and not followed; a sub-folder
    holding another command's output (``is_other_output`` of a folder with a marker) is listed
    but not entered."""
    files: set[str] = set()
    folders: set[str] = set()
    for root, dirs, names in os.walk(folder):
        base = Path(root)
        entered = []
        for name in dirs:
            path = base / name
            rel = path.relative_to(folder).as_posix()
            folders.add(rel)
            if not path.is_symlink() and not ((path / MARKER).is_file() and is_other_output(rel)):
                entered.append(name)
        dirs[:] = entered
        for name in names:
            rel = (base / name).relative_to(folder).as_posix()
            if name != LOCK_NAME and rel != MARKER:
                files.add(rel)
    return files, folders


def _ancestors(paths: Iterable[str]) -> set[str]:
    """Every folder above the relative ``paths`` (not the root)."""
    found: set[str] = set()
    for rel in paths:
        parent = Path(rel).parent
        while parent != Path("."):
            found.add(parent.as_posix())
            parent = parent.parent
    return found


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a vaecam output folder, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
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


def _unusable(out: Path) -> str | None:
    """A one-line reason why ``out`` cannot be a folder at all, or None."""
    try:
        str(out).encode("utf-8")
    except UnicodeEncodeError:
        return (f"--out {ascii(str(out))} is not valid UTF-8 text; choose a folder name in "
                "UTF-8 (vaecam's logs and reports name it)")
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file; choose a folder"
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            return f"--out {out} lies under {parent}, which is a file; choose a folder"
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
        self._created = False
        self._created_at = ""
        self._kept_files: set[str] = set()  # there before the claim and not vaecam's
        self._kept_folders: set[str] = set()

    # ------------------------------------------------------------------------------ checks
    def _check(self) -> tuple[list[str], list[str]]:
        """Validate the claim without touching anything; returns the files and folders to
        delete (folders deepest first, removed only once empty)."""
        out = self.path
        reason = _unusable(out)
        if reason:
            raise ConfigError(reason)
        reason = _overlap(out, self.inputs)
        if reason:
            raise ConfigError(f"{reason}; choose an output folder outside your data and "
                              "checkpoints")
        if not out.is_dir():
            return [], []
        marker = read_marker(out)
        if marker is not None and marker["command"] != self.command:
            raise ConfigError(
                f"{out} holds the results of 'vaecam {marker['command']}', not of "
                f"'vaecam {self.command}'; choose another --out"
            )
        ours_files, ours_folders, files, folders = _owned(out, marker)
        foreign = sorted(files - ours_files)
        self._kept_files, self._kept_folders = set(foreign), folders - ours_folders
        if foreign and not self.keep:
            move = "move them away or " if marker else ""
            raise ConfigError(
                f"{out} holds files vaecam did not write (e.g. '{foreign[0]}'); {move}choose "
                "another --out (vaecam never deletes files it did not write)"
            )
        if self.keep or not ours_files:
            return [], []
        if not self.overwrite:
            raise ConfigError(
                f"{out} already holds the results of 'vaecam {self.command}'; pass --overwrite "
                "to replace them, or choose another --out"
            )
        return sorted(ours_files), sorted(ours_folders, key=lambda f: -f.count("/"))

    # ------------------------------------------------------------------------------ claim
    def __enter__(self) -> OutputFolder:
        if is_child_rank():
            self.path.mkdir(parents=True, exist_ok=True)
            return self
        self._check()
        self._created = not self.path.exists()
        self._lock.acquire()
        try:
            doomed, folders = self._check()  # again under the lock: another may have written
            for rel in doomed:
                (self.path / rel).unlink(missing_ok=True)
            _remove_empty(self.path, folders)
            previous = read_marker(self.path) or {}
            self._created_at = _now()
            if previous.get("command") == self.command and "created" in previous:
                self._created_at = str(previous["created"])
            self._write_marker(_WRITING)
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
                self._write_marker(_CLOSED)
            else:  # record what was written even when the command failed
                try:
                    self._close_after_failure()
                except Exception:  # noqa: BLE001 - the original error matters more
                    pass
        finally:
            self._lock.release()
            self._claimed = False

    def kept(self, path: Path) -> bool:
        """Whether ``path``, inside the folder, was there before the claim and is not
        vaecam's (so the command must not replace it)."""
        relative = Path(path).resolve().relative_to(self.path).as_posix()
        return relative in self._kept_files

    def _current(self) -> tuple[set[str], set[str]]:
        """The files and sub-folders this command owns now: all but those kept at the claim."""
        files, folders = _walk(self.path, lambda rel: rel in self._kept_folders)
        return files - self._kept_files, folders - self._kept_folders

    def _close_after_failure(self) -> None:
        """Record the files written; if there are none, remove the marker, the lock and the
        folders this claim created, so that a failed command leaves nothing behind."""
        files, folders = self._current()
        if files:
            self._write_marker(_CLOSED)
            return
        (self.path / MARKER).unlink(missing_ok=True)
        _remove_empty(self.path, sorted(folders, key=lambda f: -f.count("/")))
        self._lock.release()
        if self._created and not any(self.path.iterdir()):
            self.path.rmdir()

    def _write_marker(self, state: str) -> None:
        from vaecam import __version__

        files, folders = self._current()
        record = {
            "vaecam": __version__,
            "command": self.command,
            "created": self._created_at,
            "updated": _now(),
            "state": state,
            "files": sorted(files),
            "folders": sorted(folders),
            "kept": sorted(self._kept_files),
            "kept_folders": sorted(self._kept_folders),
        }
        with writing(self.path / MARKER, "marker file"):
            atomic_write_text(self.path / MARKER, json.dumps(record, indent=2) + "\n")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _owned(out: Path, marker: dict[str, Any] | None
           ) -> tuple[set[str], set[str], set[str], set[str]]:
    """(vaecam's files, vaecam's folders, all files, all folders) of ``out`` per its marker.

    A closed marker lists them; one left ``writing`` by a killed command owns everything there
    now except what it recorded as kept. Without a marker nothing is vaecam's. A sub-folder with
    another command's marker that this command did not create is neither walked nor owned."""
    if marker is None:
        files, folders = _walk(out, lambda rel: True)
        return set(), set(), files, folders
    listed = {str(f) for f in marker.get("files", [])}
    created = {str(f) for f in marker.get("folders", _ancestors(listed))}
    if marker.get("state") != _WRITING:
        files, folders = _walk(out, lambda rel: rel not in created)
        return files & listed, created & folders, files, folders
    kept = {str(f) for f in marker.get("kept", [])}
    kept_folders = {str(f) for f in marker.get("kept_folders", [])}
    files, folders = _walk(out, lambda rel: rel in kept_folders)
    return files - kept, folders - kept_folders, files, folders


def _remove_empty(root: Path, folders: Sequence[str]) -> None:
    """Remove each of ``folders`` (relative, deepest first) that is a real, empty folder."""
    for rel in folders:
        path = root / rel
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()


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
