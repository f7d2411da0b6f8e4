"""Train a registered VAE with the CLI's merged options; shared by MNIST, UCSD and MVTec.

The checkpoint records where the data came from and the options of the run (``vaecam`` entry),
so that a localisation result can name the data, seed and settings that produced its model; the
run folder's ``train_config.json`` records the same data description as part of the run's
identity, which ``--resume`` checks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch import Tensor
from torch.utils.data import Dataset

from vaecam.data.transforms import AugmentConfig
from vaecam.metrics.encoder_health import health_warning
from vaecam.outputs.portable import PortablePaths
from vaecam.training.callbacks import LatentHealth
from vaecam.training.module import VAEModule
from vaecam.training.run_folder import plain
from vaecam.training.trainer import TrainConfig, fit

# Options that shape the loss beyond the papers (see vaecam.training.module).
LOSS_SWITCHES = {"kl_warmup_epochs": 0.0, "free_bits": 0.0, "recon_scale": 1.0}


def loss_switches(options: dict[str, Any]) -> dict[str, float]:
    """The anti-collapse switches of merged options (their defaults: off)."""
    return {key: float(options[key] if options.get(key) is not None else default)
            for key, default in LOSS_SWITCHES.items()}


def train_vae(
    model_name: str,
    model_config: dict[str, Any],
    train_set: Dataset,
    cfg: TrainConfig,
    lr: float,
    data: dict[str, Any],
    options: dict[str, Any],
    inputs: Sequence[Path] = (),
    val_set: Dataset | None = None,
    device_augment: tuple[AugmentConfig, int] | None = None,
    callbacks: Sequence[L.Callback] = (),
    fit_images: Tensor | None = None,
) -> Path:
    """Fit ``model_name`` with Adam(``lr``) on ``train_set``; returns the last checkpoint.

    ``data`` (a plain description of the training data) and ``options`` (the merged options of
    the run) are stored in the checkpoint's ``vaecam`` entry beside the seed, their paths
    relative to the run folder (``$OUT/../data``, read back as paths by ``read_checkpoint``).
    With ``device_augment`` the training set yields (image, index) and is augmented on the
    device.
    ``fit_images``: training images the model learns its data constants from (standardisation).
    """
    portable = PortablePaths.anchored(cfg.out_dir)
    module = VAEModule(
        model_name,
        model_config,
        lr=lr,
        seed=cfg.seed,
        **loss_switches(options),
        extra_metadata={"seed": cfg.seed, "data": portable(plain(data)),
                        "train_options": portable(plain(options))},
        device_augment=device_augment,
        fit_images=fit_images,
    )
    return fit(module, train_set, cfg, val_set=val_set, data=plain(data), inputs=inputs,
               callbacks=callbacks)


def read_health(run_dir: Path) -> dict[str, Any] | None:
    """The last latent and encoder health a training run recorded (``health.json``), or None."""
    try:
        record = json.loads((Path(run_dir) / LatentHealth.FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def training_health_warning(runs: Mapping[int, Path]) -> str:
    """One line naming the runs (seed -> run folder) that ended with a layer under 20% alive
    or no active latent unit, and what to try; empty when all are healthy."""
    return health_warning({seed: read_health(run) for seed, run in runs.items()})


def tracking_callbacks(options: dict[str, Any], cfg: TrainConfig, test_set: Dataset,
                       labels: Any, model_config: dict[str, Any], model_name: str,
                       default_layers: Sequence[str], source: str) -> tuple[list[L.Callback],
                                                                             TrainConfig]:
    """With ``--track-localization``: the tracker callback on a seeded subset of ``test_set``
    and ``cfg`` with the subset named in the run's notes; otherwise nothing and ``cfg``."""
    import dataclasses

    import torch

    from vaecam.experiments.localization.config import REFERENCES, config_from_options
    from vaecam.experiments.tracking import LocalizationTracker, labelled_subset
    from vaecam.models import build_model

    if not options.get("track_localization"):
        return [], cfg
    picks = labelled_subset(torch.as_tensor(labels).bool(), int(options.get("track_images")
                                                                or 64), cfg.seed)
    items = [test_set[i] for i in picks]
    images = torch.stack([item[0] for item in items])
    masks = torch.stack([item[1] for item in items])
    probe = build_model(model_name, **model_config)
    loc_cfg = config_from_options(probe, {**options, "maps": "attention"}, default_layers)
    methods = [s.method for s in loc_cfg.settings(probe) if s.family not in REFERENCES]
    tracker = LocalizationTracker(images, masks, methods, cfg.out_dir,
                                  int(options.get("track_every") or 1))
    notes = {"tracking": {"source": source, "indices": picks, "n_images": len(picks),
                          "n_anomalous": int(masks.flatten(1).any(dim=1).sum()),
                          "note": "images of the TEST split, to watch localisation along "
                                  "training; not a clean validation set, nothing is chosen on "
                                  "it"}}
    return [tracker], dataclasses.replace(cfg, notes={**cfg.notes, **notes})
