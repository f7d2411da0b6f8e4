"""The fault matrix: ways a user could lose files, get a silently wrong result or a traceback.

Each case runs ``vaecam`` commands on generated data in a :class:`Workspace` and checks the
outcome: files that must survive, one ``vaecam: error: ...`` line with exit status 2, no lock
left behind. The same cases run in two ways: in process by ``tests/reliability`` (fast, part of
``make test``) and as separate processes by ``scripts/fault_matrix.py`` (end to end, a real
``kill -9``). Faults that a test cannot cause for real (a full disk, a killed process) are
injected by :func:`fault`, in the process that runs the command.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
from PIL import Image

LOCK = ".vaecam.lock"
MARKER = ".vaecam.json"


@dataclass
class Result:
    """Exit status and output of one command."""

    code: int
    out: str
    err: str

    def error_line(self) -> str:
        """The one-line error of a refused command (exit 2, one error line, no traceback)."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert self.code == 2, f"exit status {self.code}, not 2: {self.err[-3000:]}"
        assert "Traceback" not in self.err, self.err[-3000:]
        errors = [line for line in lines if line.startswith("vaecam: error: ")]
        assert len(errors) == 1 and lines[-1] == errors[0], lines[-5:]
        return errors[0]

    def ok(self) -> Result:
        assert self.code == 0, f"exit status {self.code}: {self.err[-3000:]}"
        return self


# argv, fault name (or None) -> Result
Runner = Callable[[Sequence[str], "str | None"], Result]


class Killed(BaseException):
    """Stands for ``kill -9`` when a command runs inside the test process."""


@dataclass
class Workspace:
    """A temporary folder with generated MVTec-like data and a finished two-step smoke run,
    each made when a case first needs it."""

    root: Path
    runner: Runner

    def __post_init__(self) -> None:
        self._making = threading.Lock()

    @property
    def data(self) -> Path:
        with self._making:
            if not (self.root / "data").is_dir():
                self.run("data", "synth", "mvtec", self.root / "data", "--n-train", "8").ok()
        return self.root / "data"

    @property
    def trained_run(self) -> Path:
        data = self.data
        with self._making:
            if not (self.root / "run").is_dir():
                self.run("train", "mvtec", "--preset", "smoke", "--data", data, "--category",
                         "synthetic", "--out", self.root / "run", "--max-steps", "2",
                         "--no-progress").ok()
        return self.root / "run"

    def run(self, *args: object, fault: str | None = None) -> Result:
        """Run ``vaecam ARGS``; no lock file may be left in the folders it was given (a
        killed command's stays: only the operating system's lock is released)."""
        result = self.runner([str(a) for a in args], fault)
        if fault != "killed":
            folders = [Path(a) for a in args if isinstance(a, Path) and Path(a).is_dir()]
            locks = [str(p) for folder in folders for p in folder.rglob(LOCK)]
            assert not locks, f"lock files left behind: {locks}"
        return result

    def train(self, out: Path, *extra: object, fault: str | None = None) -> Result:
        return self.run("train", "mvtec", "--preset", "smoke", "--data", self.data,
                        "--category", "synthetic", "--out", out, "--max-steps", "2",
                        "--no-progress", *extra, fault=fault)

    def localize(self, out: Path, checkpoint: Path, *extra: object, data: Path | None = None,
                 fault: str | None = None) -> Result:
        return self.run("localize", "mvtec", "--preset", "smoke", "--checkpoint", checkpoint,
                        "--data", data or self.data, "--category", "synthetic", "--out", out,
                        "--max-images", "6", "--no-tune", "--maps", "recon-abs", "--method",
                        "2", "--activation", "relu", "--layer", "layer3", "--resamples", "100",
                        "--overlays", "0", "--no-progress", *extra, fault=fault)

    def copy_run(self, name: str) -> Path:
        """A copy of the finished run, for a case to damage."""
        copy = self.root / name
        shutil.copytree(self.trained_run, copy, symlinks=True)
        return copy


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (links as their target)."""
    return {p.relative_to(folder).as_posix(): (os.readlink(p).encode() if p.is_symlink()
                                               else p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


# --------------------------------------------------------------------------------- faults
@contextlib.contextmanager
def fault(name: str | None, in_process: bool) -> Iterator[None]:
    """Inject fault ``name`` into the process that runs the command, for the block."""
    if name is None:
        yield
    elif name == "disk-full":  # every figure write fails as on a full disk
        def full(self, fname, *args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fname))

        with mock.patch("matplotlib.figure.Figure.savefig", full):
            yield
    elif name == "memory-limit":  # a ceiling on address space, so no allocation can hurt
        import resource

        before = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (_address_space() + 8 * 2**30, before[1]))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_AS, before)
    elif name == "killed":  # the process dies as its first checkpoint is about to be written
        with _killed_at_first_checkpoint(in_process):
            yield
    else:
        raise ValueError(f"unknown fault {name!r}")


def _address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def _killed_at_first_checkpoint(in_process: bool) -> Iterator[None]:
    from vaecam.outputs import folder
    from vaecam.training import checkpoints

    def die(*args, **kwargs):
        if not in_process:
            os.kill(os.getpid(), signal.SIGKILL)
        raise Killed

    def as_the_os_does(self, *exc_info):  # no clean-up runs; the OS drops the flock
        fd = self._lock._fd
        if fd is not None:
            os.close(fd)
            self._lock._fd = None

    with mock.patch.object(checkpoints.torch, "save", die), \
            mock.patch.object(folder.OutputFolder, "__exit__", as_the_os_does):
        yield


# --------------------------------------------------------------------------------- cases
def d1_overwrite_keeps_user_files_in_a_seed_folder(ws: Workspace) -> None:
    run = ws.copy_run("d1")
    (run / "seed0" / "notes.txt").write_text("mine")
    (run / "seed0" / "plots").mkdir()
    line = ws.train(run, "--overwrite").error_line()
    assert "did not write (e.g. 'seed0/notes.txt')" in line, line
    assert (run / "seed0" / "notes.txt").read_text() == "mine"
    (run / "seed0" / "notes.txt").unlink()
    ws.train(run, "--overwrite").ok()
    assert (run / "seed0" / "plots").is_dir(), "an empty folder of the user's was removed"


def d2_overwrite_keeps_another_commands_output_nested_inside(ws: Workspace) -> None:
    run = ws.copy_run("d2")
    ws.localize(run / "eval", run / "seed0" / "checkpoints" / "last.ckpt").ok()
    (run / "eval" / "mine.txt").write_text("mine")
    before = tree(run / "eval")
    ws.train(run, "--overwrite").ok()
    assert tree(run / "eval") == before


def d3_a_fresh_out_keeps_the_users_empty_folders(ws: Workspace) -> None:
    out = ws.root / "d3"
    (out / "empty").mkdir(parents=True)
    (out / "nested" / "deeper").mkdir(parents=True)
    ws.train(out).ok()
    assert (out / "empty").is_dir() and (out / "nested" / "deeper").is_dir()


def d4_red_masks_mark_the_defect(ws: Workspace) -> None:
    red = ws.root / "d4_data"
    shutil.copytree(ws.data, red)
    masks = sorted((red / "synthetic" / "ground_truth").rglob("*.png"))
    assert masks
    for path in masks:
        grey = np.asarray(Image.open(path).convert("L"))
        rgb = np.zeros((*grey.shape, 3), np.uint8)
        rgb[..., 0] = grey  # the defect in pure red (255, 0, 0): luminance 76
        Image.fromarray(rgb, "RGB").save(path)
    run = ws.trained_run
    ws.localize(ws.root / "d4_grey", run).ok()
    ws.localize(ws.root / "d4_red", run, data=red).ok()
    scores = [json.loads((ws.root / name / "results.json").read_text())
              for name in ("d4_grey", "d4_red")]
    assert _pixel_aurocs(scores[0]) == _pixel_aurocs(scores[1]), "red masks read differently"


def _pixel_aurocs(results: dict) -> list:
    found = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key, item in sorted(value.items()):
                if "auroc" in str(key).lower() and isinstance(item, (int, float)):
                    found.append((key, item))
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(results)
    assert found, "no AUROC in results.json"
    return found


def d5_localize_into_the_data_root_is_refused(ws: Workspace) -> None:
    before = tree(ws.data)
    for out in (ws.data / "results", ws.data / "synthetic" / "results"):
        line = ws.localize(out, ws.trained_run).error_line()
        assert "inside the input" in line, line
    assert tree(ws.data) == before


def d6_full_disk_during_localize_is_one_line(ws: Workspace) -> None:
    out = ws.root / "d6"
    line = ws.localize(out, ws.trained_run, fault="disk-full").error_line()
    assert "No space left on device" in line and "free disk space" in line, line
    if out.exists():  # what was written before the disk filled up stays listed as vaecam's
        assert json.loads((out / MARKER).read_text())["state"] == "closed"


def d7_resume_from_a_damaged_last_checkpoint(ws: Workspace) -> None:
    run = ws.copy_run("d7")
    last = run / "seed0" / "checkpoints" / "last.ckpt"
    size = last.stat().st_size
    for damaged in (last.read_bytes()[: size // 2], b""):
        last.write_bytes(damaged)
        line = ws.train(run, "--resume").error_line()
        assert f"cannot read checkpoint {last}" in line and "best.ckpt over it" in line, line


def d8_an_empty_or_comment_only_config(ws: Workspace) -> None:
    for name, text in (("empty.yaml", ""), ("comments.yaml", "# nothing here\n")):
        config = ws.root / name
        config.write_text(text)
        line = ws.train(ws.root / "d8", "--config", config).error_line()
        assert "must hold a 'presets:' mapping" in line, line
    assert not (ws.root / "d8").exists()


def d9_a_config_that_is_not_utf8(ws: Workspace) -> None:
    config = ws.root / "latin1.yaml"
    text = "presets:\n  smoke:\n    train:\n      lr: 0.001  # r\xe9glage\n"
    config.write_bytes(text.encode("latin-1"))
    line = ws.train(ws.root / "d9", "--config", config).error_line()
    assert "is not UTF-8 text" in line and str(config) in line, line


def d10_an_out_path_that_is_not_utf8(ws: Workspace) -> None:
    out = ws.root / "d10-\udcff"
    line = ws.train(out).error_line()
    assert "is not valid UTF-8" in line, line
    assert not os.path.lexists(out)


def d11_a_symlink_to_an_empty_folder_in_out(ws: Workspace) -> None:
    out, target = ws.root / "d11", ws.root / "d11_target"
    out.mkdir()
    target.mkdir()
    (out / "link").symlink_to(target, target_is_directory=True)
    ws.train(out).ok()
    ws.train(out, "--overwrite").ok()
    assert (out / "link").is_symlink() and target.is_dir()


def d12_a_model_too_large_for_memory(ws: Workspace) -> None:
    out = ws.root / "d12"
    line = ws.train(out, "--latent-dim", "1000000000", fault="memory-limit").error_line()
    assert "not enough memory" in line and "--latent-dim" in line, line
    assert not out.exists(), "a failed command left its folder, marker or lock behind"


def d13_resume_after_kill_before_the_first_checkpoint(ws: Workspace) -> None:
    out = ws.root / "d13"
    killed = ws.train(out, fault="killed")
    assert killed.code != 0 and (out / "seed0" / "logs").is_dir()
    assert not (out / "seed0" / "checkpoints" / "last.ckpt").exists()
    ws.train(out, "--resume").ok()
    assert (out / "seed0" / "checkpoints" / "last.ckpt").is_file()


def d14_out_under_a_regular_file(ws: Workspace) -> None:
    afile = ws.root / "a_file"
    afile.write_text("not a folder")
    line = ws.train(afile / "run").error_line()
    assert f"lies under {afile}, which is a file" in line and "disk space" not in line, line


def d15_seeds_must_be_a_list_or_num_seeds(ws: Workspace) -> None:
    config = ws.root / "seeds.yaml"
    config.write_text("presets:\n  smoke:\n    train:\n      seeds: 3\n")
    line = ws.train(ws.root / "d15", "--config", config).error_line()
    assert "seeds must be a list" in line and "num_seeds: N" in line, line
    config.write_text("presets:\n  smoke:\n    train:\n      num_seeds: 2\n")
    ws.train(ws.root / "d15", "--config", config, "--max-steps", "1").ok()
    assert sorted(p.name for p in (ws.root / "d15").glob("seed*")) == ["seed0", "seed1"]


def d16_warnings_are_one_prefixed_line(ws: Workspace) -> None:
    ucsd = ws.root / "ucsd"
    ws.run("data", "synth", "ucsd", ucsd).ok()  # Test003 has no masks
    run = ws.root / "d16_run"
    trained = ws.run("train", "ucsd", "--preset", "smoke", "--data", ucsd / "UCSDped1",
                     "--out", run, "--max-steps", "1", "--no-progress").ok()
    localized = ws.run("localize", "ucsd", "--preset", "smoke", "--checkpoint", run, "--out",
                       ws.root / "d16", "--no-tune", "--maps", "recon-abs", "--method", "2",
                       "--activation", "relu", "--resamples", "100", "--overlays", "0",
                       "--no-progress").ok()
    mvtec = ws.train(ws.root / "d16_pretrained", "--pretrained", "--max-steps", "1").ok()
    lines = [line for result in (trained, localized, mvtec) for line in result.err.splitlines()]
    warnings = [line for line in lines if "warning" in line.lower()]
    for line in warnings:
        assert line.startswith("vaecam: warning: ") and "warning:" not in line[17:].lower() \
            and "WARNING" not in line, line
    assert any("Test003" in line for line in warnings), "skipped clips not reported"
    pretrained = [line for line in mvtec.err.splitlines() if "ImageNet weights" in line]
    assert len(pretrained) == 1, pretrained


def estimate_refuses_500_seeds_without_yes(ws: Workspace) -> None:
    out = ws.root / "estimate"
    line = ws.run("train", "mvtec", "--preset", "cpu", "--data", ws.data, "--category",
                  "synthetic", "--out", out, "--num-seeds", "500").error_line()
    assert "500 seed(s)" in line and "pass --yes" in line and " h " in line, line
    assert not out.exists()


CASES: dict[str, Callable[[Workspace], None]] = {
    "D1": d1_overwrite_keeps_user_files_in_a_seed_folder,
    "D2": d2_overwrite_keeps_another_commands_output_nested_inside,
    "D3": d3_a_fresh_out_keeps_the_users_empty_folders,
    "D4": d4_red_masks_mark_the_defect,
    "D5": d5_localize_into_the_data_root_is_refused,
    "D6": d6_full_disk_during_localize_is_one_line,
    "D7": d7_resume_from_a_damaged_last_checkpoint,
    "D8": d8_an_empty_or_comment_only_config,
    "D9": d9_a_config_that_is_not_utf8,
    "D10": d10_an_out_path_that_is_not_utf8,
    "D11": d11_a_symlink_to_an_empty_folder_in_out,
    "D12": d12_a_model_too_large_for_memory,
    "D13": d13_resume_after_kill_before_the_first_checkpoint,
    "D14": d14_out_under_a_regular_file,
    "D15": d15_seeds_must_be_a_list_or_num_seeds,
    "D16": d16_warnings_are_one_prefixed_line,
    "estimate": estimate_refuses_500_seeds_without_yes,
}
