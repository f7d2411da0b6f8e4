"""UCSD pedestrian anomaly localisation: train the three-conv VAE, then the reproduction's
Figure 4 (pixel AUROC per encoder conv layer, method 1/2 x relu/abs, beside the baseline).

The reference numbers are UCSD **Ped1** (paper and reproduction); a run on Ped2 says so in its
table, since the two scenes differ and the numbers are not directly comparable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from vaecam.data.ucsd import UCSDTestClips, UCSDTrainFrames
from vaecam.errors import ConfigError
from vaecam.experiments.anomaly import (
    AnomalyExperiment,
    DataSource,
    LocalizationData,
    Localized,
)
from vaecam.experiments.localization.config import BASELINE, LocalizationConfig
from vaecam.experiments.training import tracking_callbacks, train_vae
from vaecam.maps.setting import Setting
from vaecam.models.ucsd import RECIPES, UCSDVAE
from vaecam.report.localization import values_by
from vaecam.report.references import UCSD_PED1_PIXEL_AUROC
from vaecam.report.table import Column, Table
from vaecam.training.trainer import TrainConfig

MODEL = "ucsd-vae"
REFERENCE_COLUMNS = ("paper", "repro 1 relu", "repro 1 abs", "repro 2 relu", "repro 2 abs")


def train_ucsd(options: dict[str, Any], cfg: TrainConfig) -> Path:
    """Train the UCSD VAE on all ``Train/TrainNNN`` frames of ``options["data"]``."""
    root = Path(options["data"])
    size = int(options.get("image_size", 100))
    train_set = UCSDTrainFrames(root, size)
    model_config = {
        "input_shape": [1, size, size],
        "latent_dim": int(options.get("latent_dim", 32)),
        "channels": list(options.get("channels", (64, 128, 256))),
        "hidden": int(options.get("hidden", 1024)),
        "loss": options.get("loss", "bce"),
        **RECIPES[options.get("recipe") or "paper"],
    }
    data = {"kind": "ucsd", "root": root.resolve(), "name": root.name,
            "n_train_frames": len(train_set), "image_size": size}
    # 2,550-6,800 frames of 100 x 100 bytes: held in memory once, batches cut by index
    cfg = dataclasses.replace(cfg, in_memory=True)
    callbacks: list = []
    if options.get("track_localization"):
        test_set = UCSDTestClips(root, size)
        callbacks, cfg = tracking_callbacks(options, cfg, test_set, test_set.labels,
                                            model_config, MODEL, list(UCSDVAE.conv_layers),
                                            f"{root.name} test clips")
    fit_images = train_set.stacked() if model_config["standardize"] else None
    return train_vae(MODEL, model_config, train_set, cfg, float(options.get("lr", 1e-4)), data,
                     options, inputs=[root], callbacks=callbacks, fit_images=fit_images)


def _clips(values: Any) -> list[str | int] | None:
    """``--clips`` values: names (``Test003``) or numbers (``3``)."""
    if not values:
        return None
    return [int(v) if str(v).isdigit() else str(v) for v in values]


def figure4_table(results: Mapping[str, Any], cfg: LocalizationConfig) -> Table:
    """Pixel AUROC: rows baseline + conv layers; the paper's and the reproduction's columns,
    then vaecam's for each method x activation (mean ± std [interval]; the baseline repeated, as
    the reproduction does)."""
    ours = [(m, a) for m in cfg.methods for a in cfg.activations]
    headers = ["layer", *REFERENCE_COLUMNS,
               *(Column(f"vaecam {m} {a}", digits=3) for m, a in ours)]
    baseline = values_by(results, [BASELINE], "pixel_auroc")[0]
    rows = [[BASELINE, *(UCSD_PED1_PIXEL_AUROC["baseline"][c] for c in REFERENCE_COLUMNS),
             *([baseline] * len(ours))]]
    for label in cfg.layers:
        names = [Setting("attention", label, m, a).label() for m, a in ours]
        rows.append([label, *(UCSD_PED1_PIXEL_AUROC[label][c] for c in REFERENCE_COLUMNS),
                     *values_by(results, names, "pixel_auroc")])
    return Table(headers, rows, digits=2)


def _find_data(options: Mapping[str, Any], trained_on: Mapping[str, Any]) -> DataSource:
    root = options.get("data") or trained_on.get("root")
    if not root:
        raise ConfigError("no --data given and the checkpoint does not record its data folder")
    return DataSource(Path(root))


def _check_layers(cfg: LocalizationConfig, model: nn.Module) -> None:
    """Every layer asked for must have a row in Figure 4."""
    unknown = [label for label in cfg.layers if label not in UCSD_PED1_PIXEL_AUROC]
    if unknown:
        raise ConfigError(
            f"layer(s) {', '.join(unknown)} have no row in Figure 4; choose among "
            f"{', '.join(f'{k} ({v})' for k, v in model.conv_layers.items())}"
        )


def _load(source: DataSource, size: int, seeds: Sequence[int], options: Mapping[str, Any]
          ) -> LocalizationData:
    """The labelled test clips (``--clips``, ``--frames``) and every training frame; neighbouring
    frames are near-copies, so the bootstrap resamples whole clips."""
    root, frames = source.root, options.get("frames") or "all"
    test_set = UCSDTestClips(root, size, clips=_clips(options.get("clips")), frames=frames)
    record = {"root": str(root.resolve()), "name": root.name, "frames": frames,
              "clips": sorted({f.clip for f in test_set.frames}),
              "skipped_clips": test_set.skipped_clips, "image_size": size}
    train_sets = {seed: UCSDTrainFrames(root, size) for seed in seeds}
    return LocalizationData(test_set, test_set.labels, train_sets, record,
                            units=("clip", [f.clip for f in test_set.frames]),
                            switches={"frames": frames})


def _note(run: Localized) -> str:
    root, first = run.source.root, run.agg.first
    note = (f"Data: {root.name}, {first.n_images} test frames ({run.data.record['frames']}; "
            f"{first.n_anomalous} anomalous), maps {run.cfg.resize}, grad norm "
            f"{run.cfg.grad_norm}.")
    if run.data.record["skipped_clips"]:
        note += (f" Test clips without pixel masks, left out: "
                 f"{', '.join(run.data.record['skipped_clips'])}.")
    if "ped1" not in root.name.lower():
        note += (f" The paper and reproduction columns are UCSD Ped1 numbers; this run used "
                 f"{root.name}, so they are not directly comparable.")
    return note


UCSD = AnomalyExperiment(
    name="ucsd",
    model=MODEL,
    train=train_ucsd,
    default_layers=tuple(UCSDVAE.conv_layers),
    find_data=_find_data,
    load=_load,
    title=lambda run: f"UCSD localisation ({run.source.root.name})",
    note=_note,
    references=lambda source: {"ucsd_ped1_pixel_auroc": UCSD_PED1_PIXEL_AUROC},
    tables=(("Pixel AUROC (reproduction's Figure 4)",
             lambda results, run: figure4_table(results, run.cfg)),),
    validate=_check_layers,
)
