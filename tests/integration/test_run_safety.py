"""Nothing lost, nothing silent: output folders, resume checks, locks, Ctrl-C and full disks.

Each test reproduces a way vaecam could lose or corrupt a user's files or runs, with real files
that must survive.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vaecam.cli import main
from vaecam.outputs import FolderLock
from vaecam.training import checkpoints
from vaecam.training.checkpoints import read_checkpoint

pytestmark = pytest.mark.slow



def _err(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("vaecam: error: "), err
    return err[0]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def mvtec(module_tmp_path: Path):
    """Generated MVTec data and a 2-step smoke run on it."""
    root = module_tmp_path
    assert main(["data", "synth", "mvtec", str(root / "data"), "--n-train", "8"]) == 0
    run = root / "run"
    assert main(["train", "mvtec", "--preset", "smoke", "--data", str(root / "data"),
                 "--category", "synthetic", "--out", str(run), "--max-steps", "2",
                 "--no-progress"]) == 0
    return root / "data", run


def test_localize_into_the_run_folder_is_refused_and_the_run_survives(mvtec, capsys):
    data, run = mvtec
    before = _tree(run)
    code = main(["localize", "mvtec", "--preset", "smoke", "--checkpoint", str(run),
                 "--out", str(run), "--overwrite", "--no-progress"])
    assert code == 2 and "contains the input" in _err(capsys)
    assert _tree(run) == before


def test_localize_into_the_dataset_is_refused_and_the_data_survives(mvtec, capsys):
    data, run = mvtec
    before = _tree(data)
    for out in (data, data / "synthetic", data / "synthetic" / "results"):
        code = main(["localize", "mvtec", "--preset", "smoke", "--checkpoint", str(run),
                     "--out", str(out), "--overwrite", "--no-progress"])
        assert code == 2
        assert "contains the input" in _err(capsys) or out != data
    assert _tree(data) == before


def test_explain_into_the_run_folder_is_refused_and_the_checkpoint_survives(tmp_path,
                                                                          mnist_checkpoint,
                                                                          capsys):
    run = mnist_checkpoint.parents[2]  # OUT of 'vaecam train mnist'
    before = read_checkpoint(mnist_checkpoint)["global_step"]
    code = main(["explain", "--checkpoint", str(mnist_checkpoint), "--out", str(run),
                 "--overwrite", "--digits", "7", "--n", "1"])
    assert code == 2 and "contains the input" in _err(capsys)
    assert read_checkpoint(mnist_checkpoint)["global_step"] == before


def test_overwrite_replaces_only_vaecams_own_files(tmp_path, mnist_checkpoint, capsys):
    out = tmp_path / "explain"
    args = ["explain", "--checkpoint", str(mnist_checkpoint), "--out", str(out), "--digits",
            "7", "--n", "1"]
    assert main(args) == 0
    assert main([*args[:-4], "--digits", "9", "--n", "1", "--overwrite"]) == 0
    names = {p.name for p in out.iterdir()}
    assert not any(n.startswith("digit7") for n in names) and "digit9_method1_relu_encoder-2.png" \
        in names  # the earlier result was replaced
    (out / "my_notes.txt").write_text("keep me")
    capsys.readouterr()
    assert main([*args, "--overwrite"]) == 2
    line = _err(capsys)
    assert "did not write (e.g. 'my_notes.txt')" in line and "--overwrite" not in line.split(";")[1]
    assert (out / "my_notes.txt").read_text() == "keep me"
    user = tmp_path / "user_folder"
    user.mkdir()
    (user / "thesis.tex").write_text("precious")
    assert main([*args[:-6], "--out", str(user), "--digits", "7", "--n", "1",
                 "--overwrite"]) == 2
    assert "did not write" in _err(capsys) and (user / "thesis.tex").read_text() == "precious"


def _train(out: Path, *extra: str) -> int:
    return main(["train", "mnist", "--digit", "1", "--preset", "smoke", "--out", str(out),
                 "--no-progress", *extra])


def test_resume_refuses_options_that_change_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--max-steps", "2", "--max-epochs", "-1") == 0
    config = (out / "seed0" / "train_config.json").read_bytes()
    capsys.readouterr()
    assert _train(out, "--max-steps", "4", "--max-epochs", "-1", "--resume", "--lr", "0.5") == 2
    assert "--lr is 0.5 here but 0.001 in the run" in _err(capsys)
    assert _train(out, "--max-steps", "4", "--max-epochs", "-1", "--resume",
                  "--latent-dim", "8") == 2
    assert "--latent-dim is 8 here but 32 in the run" in _err(capsys)
    assert (out / "seed0" / "train_config.json").read_bytes() == config
    assert _train(out, "--max-steps", "4", "--max-epochs", "-1", "--resume") == 0
    assert read_checkpoint(out / "seed0" / "checkpoints" / "last.ckpt")["global_step"] == 4


def test_resuming_another_experiments_folder_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--max-steps", "1", "--max-epochs", "-1") == 0
    before = _tree(out)
    capsys.readouterr()
    code = main(["train", "dsprites", "--preset", "smoke", "--out", str(out), "--resume",
                 "--no-progress"])
    assert code == 2
    assert "holds the results of 'vaecam train mnist', not of 'vaecam train dsprites'" \
        in _err(capsys)
    assert _tree(out) == before


def test_a_second_command_on_a_locked_folder_fails_at_once(tmp_path, capsys):
    out = tmp_path / "run"
    with FolderLock(out):
        start = time.perf_counter()
        assert _train(out, "--max-steps", "1", "--max-epochs", "-1") == 2
        assert time.perf_counter() - start < 30
    assert f"another vaecam command (pid {os.getpid()}) is writing into {out}" in _err(capsys)


def test_full_disk_keeps_the_last_good_checkpoint_and_names_the_file(tmp_path, capsys,
                                                                    monkeypatch):
    out = tmp_path / "run"
    real_save = checkpoints.torch.save
    saves = {"n": 0}

    def filling_disk(obj, handle):
        saves["n"] += 1
        if saves["n"] > 1:  # the first checkpoint fits, then the disk is full
            handle.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, handle)

    monkeypatch.setattr(checkpoints.torch, "save", filling_disk)
    code = _train(out, "--max-steps", "3", "--max-epochs", "-1", "--checkpoint-every-steps",
                  "1")
    assert code == 2
    line = _err(capsys)
    assert "could not write file" in line and "last.ckpt" in line
    assert "No space left on device" in line
    last = out / "seed0" / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["global_step"] == 1  # the last good one, readable
    assert not list(last.parent.glob(".*.tmp"))
    monkeypatch.setattr(checkpoints.torch, "save", real_save)
    stale = last.parent / ".last.ckpt.abc12345.tmp"
    stale.write_bytes(b"left by a killed process")
    assert _train(out, "--max-steps", "3", "--max-epochs", "-1", "--resume") == 0
    assert not stale.exists() and read_checkpoint(last)["global_step"] == 3


def test_ctrl_c_saves_a_checkpoint_exits_130_and_resumes(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "vaecam", "train", "mnist", "--digit", "1", "--preset",
           "smoke", "--out", str(out), "--max-epochs", "-1", "--max-steps", "400",
           "--checkpoint-every-steps", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=env)
    last = out / "seed0" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "vaecam: interrupted; continue with the same command and --resume" in err
    assert "Traceback" not in err
    stopped = read_checkpoint(last)["global_step"]
    assert 2 <= stopped < 400
    resumed = subprocess.run([*cmd[:-3], "--max-steps", str(stopped + 2), "--resume",
                              "--no-progress"], capture_output=True, text=True, env=env,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert read_checkpoint(last)["global_step"] == stopped + 2
    marker = json.loads((out / ".vaecam.json").read_text())
    assert "seed0/checkpoints/last.ckpt" in marker["files"]
