"""Build a Lightning ``Trainer`` with vaecam's conventions and run a fit.

Conventions: a run lives in one output folder (``checkpoints/best.ckpt``,
``checkpoints/last.ckpt``, ``logs/csv/version_N`` and ``logs/tensorboard/version_N`` with one
version per launch, ``train_config.json``); checkpoints are written atomically; the same options
run on CPU, one GPU, or several GPUs/nodes with DDP; a folder that already holds a run is never
overwritten silently: resume it or pass ``overwrite``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader, Dataset

from vaecam.errors import ConfigError
from vaecam.training.checkpoints import atomic_torch_save
from vaecam.training.sampler import SeededShuffleSampler


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that never leaves a half-written file in place."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        atomic_torch_save(checkpoint, path)


class FinalCheckpoint(L.Callback):
    """Write ``last.ckpt`` when training ends, whatever ``checkpoint_every_n_epochs`` is."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)


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
    monitor: str = "val/loss"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        return data


def checkpoint_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "checkpoints"


def last_checkpoint(out_dir: Path) -> Path:
    return checkpoint_dir(out_dir) / "last.ckpt"


def best_checkpoint(out_dir: Path) -> Path:
    return checkpoint_dir(out_dir) / "best.ckpt"


def prepare_run_dir(cfg: TrainConfig) -> Path | None:
    """Check the output folder; return the checkpoint to resume from, if any."""
    out = Path(cfg.out_dir)
    last = last_checkpoint(out)
    if cfg.resume:
        if not last.is_file():
            raise ConfigError(f"nothing to resume: {last} does not exist; drop --resume to start")
        return last
    if checkpoint_dir(out).exists() and any(checkpoint_dir(out).iterdir()):
        if not cfg.overwrite:
            raise ConfigError(
                f"{out} already holds a training run; pass --resume to continue it, "
                "--overwrite to replace it, or choose another --out"
            )
        shutil.rmtree(checkpoint_dir(out))
        shutil.rmtree(out / "logs", ignore_errors=True)
    return None


def make_loader(
    dataset: Dataset, batch_size: int, seed: int, shuffle: bool, num_workers: int = 0
) -> DataLoader:
    """A loader whose order is a function of (seed, epoch): reproducible and resumable."""
    sampler = SeededShuffleSampler(len(dataset), seed, shuffle=shuffle)  # type: ignore[arg-type]
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )


def build_trainer(cfg: TrainConfig, has_validation: bool) -> L.Trainer:
    out = Path(cfg.out_dir)
    monitor = cfg.monitor if has_validation else "train/loss_epoch"
    best = ModelCheckpoint(
        dirpath=checkpoint_dir(out),
        filename="best",
        monitor=monitor,
        mode="min",
        save_top_k=1,
        save_last=True,
        every_n_epochs=cfg.checkpoint_every_n_epochs,
        enable_version_counter=False,
    )
    callbacks: list[Any] = [best, FinalCheckpoint(last_checkpoint(out))]
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
        log_every_n_steps=cfg.log_every_n_steps,
        enable_model_summary=False,
        deterministic=False,
        num_sanity_val_steps=0,
    )


def fit(
    module: L.LightningModule,
    train_set: Dataset,
    cfg: TrainConfig,
    val_set: Dataset | None = None,
) -> Path:
    """Train ``module`` and return the path of the last checkpoint."""
    resume_from = prepare_run_dir(cfg)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    train_loader = make_loader(train_set, cfg.batch_size, cfg.seed, True, cfg.num_workers)
    val_loader = (
        make_loader(val_set, cfg.batch_size, cfg.seed, False, cfg.num_workers) if val_set else None
    )
    trainer = build_trainer(cfg, has_validation=val_loader is not None)
    if trainer.is_global_zero:
        (out / "train_config.json").write_text(json.dumps(cfg.to_json(), indent=2, default=str))
    trainer.fit(
        module,
        train_dataloaders=train_loader,
        val_dataloaders=val_loader,
        ckpt_path=resume_from,
        weights_only=True,
    )
    return last_checkpoint(out)
