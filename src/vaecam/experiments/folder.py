"""Anomaly localisation on a folder of the user's own images (:mod:`vaecam.data.folder`): train
the three-conv VAE of the UCSD experiment with the images' channels, then score every map on
the test images against their masks. There are no published numbers to compare with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from vaecam.data.folder import FolderTest, FolderTrain, folder_channels
from vaecam.errors import ConfigError
from vaecam.experiments.anomaly import (
    AnomalyExperiment,
    DataSource,
    LocalizationData,
    Localized,
)
from vaecam.experiments.training import train_vae
from vaecam.models.ucsd import RECIPES, UCSDVAE
from vaecam.training.trainer import TrainConfig

MODEL = "ucsd-vae"


def train_folder(options: dict[str, Any], cfg: TrainConfig) -> Path:
    """Train the three-conv VAE on the images of ``<data>/train``."""
    root = Path(options["data"])
    size = int(options.get("image_size", 64))
    channels = folder_channels(root)
    train_set = FolderTrain(root, size, channels)
    model_config = {
        "input_shape": [channels, size, size],
        "latent_dim": int(options.get("latent_dim", 32)),
        "channels": list(options.get("channels", (32, 64, 128))),
        "hidden": int(options.get("hidden", 512)),
        "loss": options.get("loss", "bce"),
        **RECIPES[options.get("recipe") or "paper"],
    }
    data = {"kind": "folder", "root": root.resolve(), "name": root.name,
            "n_train_images": len(train_set), "image_size": size, "channels": channels}
    fit_images = (torch.stack([train_set[i] for i in range(len(train_set))])
                  if model_config["standardize"] else None)
    return train_vae(MODEL, model_config, train_set, cfg, float(options.get("lr", 1e-3)), data,
                     options, inputs=[root], fit_images=fit_images)


def _find_data(options: Mapping[str, Any], trained_on: Mapping[str, Any]) -> DataSource:
    root = options.get("data") or trained_on.get("root")
    if not root:
        raise ConfigError("no --data given and the checkpoint does not record its image folder")
    trained, found = trained_on.get("channels"), folder_channels(Path(root))
    if trained is not None and trained != found:
        raise ConfigError(f"the model was trained on {trained}-channel images but {root}/train "
                          f"holds {found}-channel ones; pass the folder it was trained on")
    return DataSource(Path(root))


def _load(source: DataSource, size: int, seeds: Sequence[int], options: Mapping[str, Any]
          ) -> LocalizationData:
    """The test images with their masks and the training images, read with the channels the
    model was trained on."""
    channels = folder_channels(source.root)
    test_set = FolderTest(source.root, size, channels)
    record = {"root": str(source.root.resolve()), "name": source.root.name, "image_size": size,
              "channels": channels}
    train_sets = {seed: FolderTrain(source.root, size, channels) for seed in seeds}
    return LocalizationData(test_set, test_set.labels, train_sets, record)


def _note(run: Localized) -> str:
    first = run.agg.first
    return (f"Data: {run.source.root.name}, {first.n_images} test images ({first.n_anomalous} "
            f"abnormal) at {run.image_size}x{run.image_size}, maps {run.cfg.resize}, grad norm "
            f"{run.cfg.grad_norm}. No published numbers for this data.")


FOLDER = AnomalyExperiment(
    name="folder",
    model=MODEL,
    train=train_folder,
    default_layers=tuple(UCSDVAE.conv_layers),
    find_data=_find_data,
    load=_load,
    title=lambda run: f"Localisation on {run.source.root.name}",
    note=_note,
    references=lambda source: {},
)
