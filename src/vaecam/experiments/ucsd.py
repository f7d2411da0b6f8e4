"""UCSD pedestrian anomaly localisation: train the three-conv VAE, then the reproduction's
Figure 4 (pixel AUROC per encoder conv layer, method 1/2 x relu/abs, beside the baseline).

The reference numbers are UCSD **Ped1** (paper and reproduction); a run on Ped2 says so in its
table, since the two scenes differ and the numbers are not directly comparable.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from vaecam.data.ucsd import UCSDTestClips, UCSDTrainFrames
from vaecam.errors import ConfigError
from vaecam.experiments import localization as loc
from vaecam.experiments.training import tracking_callbacks, train_vae
from vaecam.models.ucsd import RECIPES, UCSDVAE
from vaecam.outputs import OutputFolder
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


def figure4_table(results: dict[str, Any], cfg: loc.LocalizationConfig) -> Table:
    """Pixel AUROC: rows baseline + conv layers; the paper's and the reproduction's columns,
    then vaecam's for each method x activation (mean ± std [interval]; the baseline repeated, as
    the reproduction does)."""
    ours = [(m, a) for m in cfg.methods for a in cfg.activations]
    headers = ["layer", *REFERENCE_COLUMNS,
               *(Column(f"vaecam {m} {a}", digits=3) for m, a in ours)]
    baseline = values_by(results, [loc.BASELINE], "pixel_auroc")[0]
    rows = [[loc.BASELINE, *(UCSD_PED1_PIXEL_AUROC["baseline"][c] for c in REFERENCE_COLUMNS),
             *([baseline] * len(ours))]]
    for label in cfg.layers:
        names = [loc.Setting("attention", label, m, a).label() for m, a in ours]
        rows.append([label, *(UCSD_PED1_PIXEL_AUROC[label][c] for c in REFERENCE_COLUMNS),
                     *values_by(results, names, "pixel_auroc")])
    return Table(headers, rows, digits=2)


def localize_ucsd(options: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the trained UCSD VAE(s) of every seed on the labelled test clips; write tables,
    figures and results.json into ``options["out"]``; returns the results."""
    models, metas, checkpoints = loc.load_models(options["checkpoint"], options.get("seeds"),
                                                 MODEL)
    meta = next(iter(metas.values()))
    data_root = options.get("data") or meta.get("data", {}).get("root")
    if not data_root:
        raise ConfigError("no --data given and the checkpoint does not record its data folder")
    root = Path(data_root)
    model = next(iter(models.values()))
    cfg = loc.config_from_options(model, options, list(UCSDVAE.conv_layers))
    unknown = [label for label in cfg.layers if label not in UCSD_PED1_PIXEL_AUROC]
    if unknown:
        raise ConfigError(
            f"layer(s) {', '.join(unknown)} have no row in Figure 4; choose among "
            f"{', '.join(f'{k} ({v})' for k, v in model.conv_layers.items())}"
        )
    frames = options.get("frames") or "all"
    size = model.input_shape[1]
    test_set = UCSDTestClips(root, size, clips=_clips(options.get("clips")), frames=frames)
    stats_sets = {seed: UCSDTrainFrames(root, size) for seed in models}
    inputs = [root, *checkpoints.values()]
    with OutputFolder(options["out"], "localize ucsd", inputs,
                      overwrite=bool(options.get("overwrite"))) as folder:
        train_images = loc.sample_images(stats_sets[next(iter(models))]) if cfg.tune else None
        # neighbouring frames are near-copies: the bootstrap resamples whole clips
        agg = loc.evaluate_seeds(models, test_set, test_set.labels, cfg, options, stats_sets,
                                 train_images, units=("clip", [f.clip for f in test_set.frames]))
        note = (f"Data: {root.name}, {agg.first.n_images} test frames ({frames}; "
                f"{agg.first.n_anomalous} anomalous), maps {cfg.resize}, grad norm "
                f"{cfg.grad_norm}.")
        if test_set.skipped_clips:
            note += (f" Test clips without pixel masks, left out: "
                     f"{', '.join(test_set.skipped_clips)}.")
        if "ped1" not in root.name.lower():
            note += (f" The paper and reproduction columns are UCSD Ped1 numbers; this run used "
                     f"{root.name}, so they are not directly comparable.")
        record = {
            "experiment": "ucsd-localization",
            "note": note,
            "checkpoints": {str(k): str(v) for k, v in checkpoints.items()},
            "model": {"name": meta["model"], "config": meta["config"]},
            "training": {str(seed): {k: m.get(k) for k in ("seed", "data", "train_options")}
                         for seed, m in metas.items()},
            "data": {"root": str(root.resolve()), "name": root.name, "frames": frames,
                     "clips": sorted({f.clip for f in test_set.frames}),
                     "skipped_clips": test_set.skipped_clips, "image_size": size},
            "switches": {"frames": frames, "max_images": options.get("max_images"),
                         "eval_batch_size": options.get("eval_batch_size"),
                         "device": str(loc.resolve_device(options.get("device"))),
                         "preset": options.get("preset")},
            "references": {"ucsd_ped1_pixel_auroc": UCSD_PED1_PIXEL_AUROC},
            "out": str(folder.path),
        }
        results = loc.results_json(agg, cfg, record)
        extra = ["## Pixel AUROC (reproduction's Figure 4)\n", note + "\n",
                 figure4_table(results, cfg)]
        return loc.write_outputs(folder.path, agg, results, f"UCSD localisation ({root.name})",
                                 extra)
