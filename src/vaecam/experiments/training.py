"""Train a registered VAE on a dataset with the CLI's merged options; shared by UCSD and MVTec.

The checkpoint records where the data came from and the options of the run (``vaecam`` entry),
so that a localisation result can name the data, seed and settings that produced its model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from vaecam.training.module import VAEModule
from vaecam.training.trainer import TrainConfig, fit


def train_vae(
    model_name: str,
    model_config: dict[str, Any],
    train_set: Dataset,
    cfg: TrainConfig,
    lr: float,
    record: dict[str, Any],
) -> Path:
    """Fit ``model_name`` with Adam(``lr``) on ``train_set``; returns the last checkpoint.

    ``record`` (the data and options of the run, plain values) is stored in the checkpoint's
    ``vaecam`` entry beside the seed.
    """
    module = VAEModule(
        model_name,
        model_config,
        lr=lr,
        seed=cfg.seed,
        extra_metadata={"seed": cfg.seed, **_plain(record)},
    )
    return fit(module, train_set, cfg)


def _plain(value: Any) -> Any:
    """``value`` with paths as strings and tuples as lists, recursively: safe to store and
    to write as JSON."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
