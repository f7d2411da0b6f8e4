"""Build a Lightning ``Trainer`` with vaecam's conventions and run a fit.

Conventions: a run lives in one output folder (see :mod:`vaecam.training.run_folder`) that it
owns (:class:`~vaecam.outputs.OutputFolder`: locked while training, never holding or inside the
training data, replaced only with ``overwrite`` and only where vaecam wrote it); checkpoints are
written atomically every N epochs and/or every N steps; a resumed run continues with exactly the
batches and random draws of an uninterrupted one, and refuses options that change the run;
Ctrl-C or SIGTERM stops after the current step with a checkpoint; the same options run on CPU,
one GPU, or several GPUs/nodes with DDP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import Dataset

from vaecam.data.in_memory import check_fits, dataset_bytes, training_device
from vaecam.errors import ConfigError
from vaecam.outputs import OutputFolder, is_child_rank
from vaecam.outputs.atomic import remove_stale_temporaries
from vaecam.training.acceleration import ChannelsLast, CompileModel
from vaecam.training.callbacks import GracefulStop, LatentHealth, RunCheckpoints
from vaecam.training.checkpoints import atomic_torch_save
from vaecam.training.loaders import make_loader
from vaecam.training.run_folder import (
    best_checkpoint,
    check_resumable,
    checkpoint_dir,
    last_checkpoint,
    write_run_record,
)

__all__ = ["TrainConfig", "TrainingInterrupted", "best_checkpoint", "fit", "last_checkpoint"]
# Module hyperparameters that only change what is logged, not the run.
_NOT_IDENTITY = ("score_every", "score_sizes")
# Images of the fixed sample on which latent health is logged every epoch.
HEALTH_SAMPLE = 256


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C / SIGTERM after writing its last checkpoint."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that never leaves a half-written file in place."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        atomic_torch_save(checkpoint, path)


@dataclass
class TrainConfig:
    """Everything about *how* to train (the *what* is the Lightning module and the data)."""

    out_dir: Path
    max_epochs: int = 1
    max_steps: int = -1
    batch_size: int = 128
    seed: int = 0
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    num_workers: int = 0
    resume: bool = False
    overwrite: bool = False
    progress_bar: bool = True
    log_every_n_steps: int = 10
    checkpoint_every_n_epochs: int = 1
    checkpoint_every_n_steps: int = 0
    monitor: str = "val/loss"
    experiment: str = "train"
    in_memory: bool = False
    data_on_device: bool = False
    channels_last: bool = False
    compile: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_epochs == 0 or self.max_epochs < -1:
            raise ConfigError(f"--max-epochs must be a positive number (or -1 with --max-steps), "
                              f"not {self.max_epochs}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(f"--max-steps must be a positive number (or -1 for no limit), "
                              f"not {self.max_steps}")
        if self.max_epochs == -1 and self.max_steps == -1:
            raise ConfigError("give --max-epochs or --max-steps: with neither, training never ends")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, not {self.batch_size}")
        if self.checkpoint_every_n_epochs < 1 or self.checkpoint_every_n_steps < 0:
            raise ConfigError("--checkpoint-every must be >= 1 and --checkpoint-every-steps >= 0")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other; choose one")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        return data


def run_identity(module: L.LightningModule, cfg: TrainConfig,
                 data: Mapping[str, Any]) -> dict[str, Any]:
    """What makes two launches the same run: module settings, data, seed, batching, devices."""
    hparams = {k: v for k, v in dict(module.hparams).items() if k not in _NOT_IDENTITY}
    return {"module": hparams, "data": dict(data), "seed": cfg.seed, "batch_size": cfg.batch_size,
            "devices": cfg.devices, "num_nodes": cfg.num_nodes, "precision": cfg.precision}


def build_trainer(cfg: TrainConfig, has_validation: bool,
                  extra_callbacks: Sequence[L.Callback] = ()) -> L.Trainer:
    out = Path(cfg.out_dir)
    monitor = cfg.monitor if has_validation else "train/loss_epoch"
    callbacks: list[Any] = [
        RunCheckpoints(checkpoint_dir(out), monitor, cfg.checkpoint_every_n_epochs,
                       cfg.checkpoint_every_n_steps),
        *extra_callbacks,
    ]
    if cfg.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, cfg.log_every_n_steps)))
    loggers = [
        # One version folder per launch, so a resumed run never replaces earlier logs.
        CSVLogger(out / "logs", name="csv"),
        TensorBoardLogger(out / "logs", name="tensorboard", default_hp_metric=False),
    ]
    return L.Trainer(
        default_root_dir=out,
        max_epochs=cfg.max_epochs,
        max_steps=cfg.max_steps,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        num_nodes=cfg.num_nodes,
        precision=cfg.precision,  # type: ignore[arg-type]
        callbacks=callbacks,
        logger=loggers,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # SeededShuffleSampler shards by rank itself
        enable_progress_bar=cfg.progress_bar,
        enable_checkpointing=False,  # RunCheckpoints writes best.ckpt and last.ckpt
        log_every_n_steps=cfg.log_every_n_steps,
        enable_model_summary=False,
        deterministic=False,
        num_sanity_val_steps=0,
    )


def _health_sample(dataset: Dataset, seed: int) -> torch.Tensor:
    """A fixed, seeded sample of up to :data:`HEALTH_SAMPLE` images of ``dataset``."""
    n = len(dataset)  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(seed)
    picks = torch.randperm(n, generator=gen)[: min(n, HEALTH_SAMPLE)].tolist()
    items = [dataset[i] for i in picks]
    return torch.stack([i[0] if isinstance(i, (list, tuple)) else i for i in items])


def fit(
    module: L.LightningModule,
    train_set: Dataset,
    cfg: TrainConfig,
    val_set: Dataset | None = None,
    data: Mapping[str, Any] | None = None,
    inputs: Sequence[Path] = (),
    callbacks: Sequence[L.Callback] = (),
) -> Path:
    """Train ``module`` in ``cfg.out_dir`` and return the path of the last checkpoint.

    ``data`` describes the training data (it is part of the run's identity, checked on resume);
    ``inputs`` are the data folders read (the run folder may not hold or lie inside them).
    Raises :class:`TrainingInterrupted` after a Ctrl-C/SIGTERM stop (``last.ckpt`` written).

    ``cfg.in_memory`` holds the data as uint8 in host memory (batches by index slicing, the same
    batches as the DataLoader); ``cfg.data_on_device`` holds it on the training device, refused
    before anything is read or written when it would not fit.
    """
    out = Path(cfg.out_dir).expanduser().resolve()
    identity = run_identity(module, cfg, data or {})
    resume_from = None
    if cfg.resume and not is_child_rank():
        resume_from = check_resumable(out, cfg.experiment, identity)
    device = training_device(cfg.accelerator) if cfg.data_on_device else torch.device("cpu")
    in_memory = cfg.in_memory or cfg.data_on_device
    if in_memory:
        sizes = dataset_bytes(train_set) + (dataset_bytes(val_set) if val_set else 0)
        check_fits(sizes, device)
    speedups: list[L.Callback] = [ChannelsLast()] if cfg.channels_last else []
    if cfg.compile:
        speedups.append(CompileModel(training_device(cfg.accelerator).type))
    with OutputFolder(out, f"train {cfg.experiment}", inputs, overwrite=cfg.overwrite,
                      keep=cfg.resume):
        remove_stale_temporaries(checkpoint_dir(out))
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        pin = cfg.accelerator not in ("cpu",) and torch.cuda.is_available() and not in_memory

        def loader(dataset: Dataset, shuffle: bool) -> Any:
            return make_loader(dataset, cfg.batch_size, cfg.seed, shuffle, cfg.num_workers, pin,
                               in_memory=in_memory, device=device)

        train_loader = loader(train_set, True)
        val_loader = loader(val_set, False) if val_set else None
        stop = GracefulStop()
        health = LatentHealth(_health_sample(val_set or train_set, cfg.seed))
        trainer = build_trainer(cfg, val_loader is not None,
                                [stop, health, *speedups, *callbacks])
        if trainer.is_global_zero:
            write_run_record(out, cfg.experiment, identity, cfg.to_json(), cfg.notes)
        try:
            trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader,
                        ckpt_path=resume_from, weights_only=True)
        except SystemExit as exc:  # Lightning exits 1 on a second Ctrl-C
            if stop.requested:
                raise TrainingInterrupted from exc
            raise
        finally:
            stop.restore()
        if stop.requested:
            raise TrainingInterrupted
    return last_checkpoint(out)
