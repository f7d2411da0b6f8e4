"""Training infrastructure: resume, atomic checkpoints, safe loading, NaN stop, DDP on CPU."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from vaecam.errors import CheckpointError, ConfigError, VaecamError
from vaecam.training import checkpoints
from vaecam.training.checkpoints import load_model, read_checkpoint
from vaecam.training.factorvae_module import FactorVAEModule
from vaecam.training.module import VAEModule
from vaecam.training.trainer import TrainConfig, fit, last_checkpoint

SMALL = {"input_shape": [1, 16, 16], "latent_dim": 4, "channels": [4, 8], "hidden": 16}


def _data(n: int = 48, seed: int = 0) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.rand(n, 1, 16, 16, generator=gen))


class StepCounter(VAEModule):
    """Counts the training steps that really run in this launch."""

    def on_train_batch_end(self, *args) -> None:
        self.steps_run = getattr(self, "steps_run", 0) + 1


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("build", [
    lambda seed: VAEModule("mnist-vae", SMALL, seed=seed),
    lambda seed: FactorVAEModule({"latent_dim": 4}, seed=seed),
], ids=["vae", "factorvae"])
def test_initial_weights_depend_on_the_seed_alone(build) -> None:
    torch.manual_seed(1)
    first = _weights(build(5))
    torch.rand(100)  # other draws in the process must not matter
    rng = torch.get_rng_state()
    again = _weights(build(5))
    assert torch.equal(rng, torch.get_rng_state())  # the global RNG is left alone
    other = _weights(build(6))
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def _run(out: Path, epochs: int, resume: bool = False, lr: float = 1e-3) -> tuple[Path, int]:
    module = StepCounter("mnist-vae", SMALL, lr=lr, seed=7)
    cfg = TrainConfig(out_dir=out, max_epochs=epochs, batch_size=16, seed=3, resume=resume,
                      progress_bar=False, accelerator="cpu", log_every_n_steps=1)
    path = fit(module, _data(), cfg, val_set=_data(16, seed=1))
    return path, module.steps_run


def test_resume_runs_only_remaining_steps_and_matches_uninterrupted(tmp_path):
    full, full_steps = _run(tmp_path / "full", epochs=3)
    _, first_steps = _run(tmp_path / "split", epochs=1)
    resumed, resumed_steps = _run(tmp_path / "split", epochs=3, resume=True)
    assert full_steps == 9 and first_steps == 3
    assert read_checkpoint(resumed)["global_step"] == 9
    assert resumed_steps == 6, "the resumed run must only run the two remaining epochs"
    a = read_checkpoint(full)["state_dict"]
    b = read_checkpoint(resumed)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=0)
    # the runs did train: weights moved away from initialisation
    init = VAEModule("mnist-vae", SMALL, seed=7).state_dict()
    assert any((init[k] - a[k]).abs().max() > 1e-4 for k in a)


class BatchRecorder(VAEModule):
    """Records the batches it trains on; snapshots last.ckpt when epoch 2 starts."""

    snapshot: Path | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[list[int]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(batch[0][:, 0, 0, 0].mul(48).round().int().tolist())
        return super().training_step(batch, batch_idx)

    def on_train_epoch_start(self) -> None:
        if self.snapshot is not None and self.current_epoch == 2:
            shutil.copy(Path(self.trainer.default_root_dir) / "checkpoints" / "last.ckpt",
                        self.snapshot)


def test_interrupted_run_resumes_with_the_same_batches(tmp_path):
    """A run killed during epoch 2 resumes from the epoch-1 checkpoint and replays exactly."""
    data = TensorDataset(torch.arange(48.0).view(48, 1, 1, 1).expand(48, 1, 16, 16) / 48)
    snapshot = tmp_path / "snapshot.ckpt"

    def run(out: Path, module: BatchRecorder, resume: bool) -> Path:
        cfg = TrainConfig(out_dir=out, max_epochs=4, batch_size=16, seed=3, resume=resume,
                          progress_bar=False, accelerator="cpu")
        return fit(module, data, cfg, val_set=data)

    full = BatchRecorder("mnist-vae", SMALL, seed=7)
    full.snapshot = snapshot
    full_path = run(tmp_path / "full", full, resume=False)
    shutil.copytree(tmp_path / "full", tmp_path / "resumed")  # the run as it was when killed
    shutil.copy(snapshot, tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    resumed = BatchRecorder("mnist-vae", SMALL, seed=7)
    with torch.no_grad():  # a different initialisation: everything must come from the checkpoint
        for parameter in resumed.parameters():
            parameter.add_(1.0)
    resumed_path = run(tmp_path / "resumed", resumed, resume=True)
    assert resumed.seen == full.seen[6:]
    a, b = read_checkpoint(full_path)["state_dict"], read_checkpoint(resumed_path)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=0)


def test_checkpoint_loads_with_weights_only_and_rebuilds_model(tmp_path):
    path, _ = _run(tmp_path / "run", epochs=1)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["vaecam"]["model"] == "mnist-vae"
    model, meta = load_model(path, expected="mnist-vae")
    assert meta["config"]["latent_dim"] == 4 and not model.training
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()
    assert (tmp_path / "run" / "logs" / "csv" / "version_0" / "metrics.csv").is_file()
    assert any((tmp_path / "run" / "logs" / "tensorboard").rglob("events.out.tfevents*"))


def test_kill_during_save_leaves_previous_checkpoint_readable(tmp_path, monkeypatch):
    path, _ = _run(tmp_path / "run", epochs=1)
    before = read_checkpoint(path)["global_step"]

    def dying_save(obj, handle):  # writes half a file, then the process "dies"
        handle.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.atomic_torch_save({"state_dict": {}}, path)
    assert read_checkpoint(path)["global_step"] == before
    assert not list(path.parent.glob(".*.tmp")), "temporary files must be cleaned up"


def test_existing_run_is_not_overwritten_and_resume_needs_a_run(tmp_path):
    _run(tmp_path / "run", epochs=1)
    with pytest.raises(ConfigError, match="already holds the results of 'vaecam train train'; "
                       "pass --overwrite"):
        _run(tmp_path / "run", epochs=1)
    with pytest.raises(ConfigError, match="nothing to resume"):
        _run(tmp_path / "empty", epochs=1, resume=True)


def test_nan_loss_and_nan_data_stop_with_clear_errors(tmp_path, monkeypatch):
    cfg = TrainConfig(out_dir=tmp_path / "a", max_epochs=1, batch_size=8, progress_bar=False,
                      accelerator="cpu")
    module = VAEModule("mnist-vae", SMALL, seed=0)
    real_loss = module.model.loss

    def nan_loss(out, x):
        terms = real_loss(out, x)
        terms.total = terms.total * float("nan")
        return terms

    monkeypatch.setattr(module.model, "loss", nan_loss)
    with pytest.raises(VaecamError, match="became nan at step 0; lower the learning rate"):
        fit(module, _data(16), cfg)
    bad = TensorDataset(torch.full((16, 1, 16, 16), float("nan")))
    cfg.out_dir = tmp_path / "b"
    with pytest.raises(VaecamError, match="contains NaN or infinite pixel values"):
        fit(VAEModule("mnist-vae", SMALL, seed=0), bad, cfg)


def test_bad_checkpoints_give_one_line_errors(tmp_path):
    path, _ = _run(tmp_path / "run", epochs=1)
    with pytest.raises(CheckpointError, match="holds a 'mnist-vae' model but this command needs"):
        load_model(path, expected="factorvae")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model(junk)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a vaecam checkpoint"):
        load_model(foreign)
    edited = read_checkpoint(path)
    edited["vaecam"]["config"]["latent_dim"] = 9
    torch.save(edited, tmp_path / "edited.ckpt")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_model(tmp_path / "edited.ckpt")
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.ckpt")


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    """The distributed path: 2 processes, gloo, launched by the CLI as a user would."""
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "vaecam", "train", "mnist", "--digit", "1",
           "--preset", "smoke", "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp",
           "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = read_checkpoint(last_checkpoint(out / "seed0"))
    # 450 training digits, batch 64 per process: 4 steps per epoch with 2 processes (8 with 1)
    assert ckpt["global_step"] == 4


# --- exact resume after any step, for every module -------------------------------------------

def _steps_run(out: Path, build, steps: int, resume: bool = False, every: int = 0) -> Path:
    cfg = TrainConfig(out_dir=out, max_epochs=-1, max_steps=steps, batch_size=8, seed=3,
                      resume=resume, progress_bar=False, accelerator="cpu",
                      checkpoint_every_n_steps=every, log_every_n_steps=1)
    return fit(build(), _data(48), cfg)


@pytest.mark.parametrize("build", [
    lambda: VAEModule("mnist-vae", SMALL, seed=7),
    lambda: FactorVAEModule({"latent_dim": 4, "input_shape": [1, 16, 16]}, seed=7),
    lambda: FactorVAEModule({"latent_dim": 4, "input_shape": [1, 16, 16]}, seed=7,
                            variant="ad-factorvae"),
], ids=["vae", "factorvae", "ad-factorvae"])
def test_mid_epoch_resume_equals_a_straight_run(tmp_path, build) -> None:
    """4 steps, then resumed to 8, inside one 6-step epoch, equals 8 straight steps exactly."""
    straight = _steps_run(tmp_path / "straight", build, 8)
    _steps_run(tmp_path / "split", build, 4)
    resumed = _steps_run(tmp_path / "split", build, 8, resume=True)
    a, b = read_checkpoint(straight), read_checkpoint(resumed)
    assert a["global_step"] == b["global_step"] == 8
    assert a["state_dict"].keys() == b["state_dict"].keys() and len(a["state_dict"]) > 5
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
