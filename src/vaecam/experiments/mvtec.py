"""MVTec-AD anomaly localisation: train the ResNet18-VAE on one category (augmented on the fly),
then the reproduction's Table 2 (pixel AUROC and best IoU) with AUPRO and image AUROC added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vaecam.data.in_memory import training_device
from vaecam.data.mvtec import MVTecTest, MVTecTrain
from vaecam.data.transforms import AugmentConfig, DeferredAugmentation
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
from vaecam.models.mvtec import ResNet18VAE
from vaecam.report.localization import METRIC_NAMES, best_per_family, values_by
from vaecam.report.references import MVTEC_MAPS_MEAN_PIXEL_AUROC, MVTEC_PIXEL
from vaecam.report.table import Column, Table
from vaecam.training.trainer import TrainConfig

MODEL = "resnet18-vae"


def train_mvtec(options: dict[str, Any], cfg: TrainConfig) -> Path:
    """Train the ResNet18-VAE on ``train/good`` of one category.

    ``num_augmented`` > 0 makes that many rotated/flipped images (drawn from ``seed`` and the
    item index, the same every epoch, as the paper's fixed augmented set); 0 trains on the
    plain images.
    """
    root, category = Path(options["data"]), str(options["category"])
    size = int(options.get("image_size", 256))
    n_augmented = int(options.get("num_augmented") or 0)
    augment = AugmentConfig(
        rotation=float(options.get("rotation", 30.0)),
        padding=options.get("padding", "black"),
        hflip_p=float(options.get("hflip_p", 0.5)),
    ) if n_augmented else None
    if cfg.data_on_device:
        raise ConfigError("--data-on-device: MVTec-AD training images are augmented on the fly "
                          "and stay in a DataLoader; use --num-workers to feed the GPU")
    train_set = MVTecTrain(root, category, size, augment, n_augmented or None, seed=cfg.seed)
    device_augment = None
    if augment is not None and training_device(cfg.accelerator).type == "cuda":
        # On a GPU the rotations run batched on the device (same draws, same pixels).
        train_set = DeferredAugmentation(train_set)
        device_augment = (augment, cfg.seed)
    model_config = {
        "input_shape": [3, size, size],
        "latent_dim": int(options.get("latent_dim", 128)),
        "hidden": int(options.get("hidden", 1024)),
        "pretrained": bool(options.get("pretrained", False)),
    }
    files = train_set.plain.files if device_augment else train_set.files
    data = {"kind": "mvtec", "root": root.resolve(), "category": category,
            "n_train_files": len(files), "n_train_items": len(train_set),
            "image_size": size, "augment": vars(augment) if augment else None}
    callbacks: list = []
    if options.get("track_localization"):
        test_set = MVTecTest(root, category, size)
        callbacks, cfg = tracking_callbacks(options, cfg, test_set, test_set.labels,
                                            model_config, MODEL, [ResNet18VAE.default_layer],
                                            f"{category} test images")
    return train_vae(MODEL, model_config, train_set, cfg, float(options.get("lr", 1e-4)), data,
                     options, inputs=[root], device_augment=device_augment, callbacks=callbacks)


def table2(results: Mapping[str, Any], cfg: LocalizationConfig, category: str) -> Table:
    """Pixel AUROC and best IoU of one category: the paper's and reproduction's numbers (known
    categories), then ours: the baseline, method 2 relu / abs at the last layer (the
    reproduction's setting) and the best attention setting of the grid."""
    reference = MVTEC_PIXEL.get(category)
    last = list(cfg.layers)[-1]
    repro = [Setting("attention", last, "2", a).label() for a in ("relu", "abs")]
    best = best_per_family(results)
    best_attention = next((s["name"] for s in best if s["family"] == "attention"), None)
    names = [BASELINE, *repro, *([best_attention] if best_attention else [])]
    ours = ["vaecam recon-abs", f"vaecam {last} m2 relu", f"vaecam {last} m2 abs",
            *([f"vaecam best: {best_attention}"] if best_attention else [])]
    headers = ["category", "metric", *(["paper", "repro relu", "repro abs"] if reference else []),
               *(Column(header, digits=3) for header in ours)]
    rows = []
    for i, key in enumerate(("pixel_auroc", "best_iou")):
        refs = list(reference[3 * i : 3 * i + 3]) if reference else []
        rows.append([category, METRIC_NAMES[key], *refs, *values_by(results, names, key)])
    return Table(headers, rows, digits=2)


def _find_data(options: Mapping[str, Any], trained_on: Mapping[str, Any]) -> DataSource:
    root = options.get("data") or trained_on.get("root")
    category = options.get("category") or trained_on.get("category")
    if not root or not category:
        raise ConfigError(
            "pass --data and --category (the checkpoint does not record its training data)"
        )
    return DataSource(Path(root), str(category))


def _load(source: DataSource, size: int, seeds: Sequence[int], options: Mapping[str, Any]
          ) -> LocalizationData:
    """The category's test images and its ``train/good`` images (not augmented)."""
    root, category = source.root, str(source.part)
    test_set = MVTecTest(root, category, size)
    record = {"root": str(root.resolve()), "category": category, "image_size": size}
    train_sets = {seed: MVTecTrain(root, category, size) for seed in seeds}
    return LocalizationData(test_set, test_set.labels, train_sets, record)


def _note(run: Localized) -> str:
    root, category, first, size = run.source.root, run.source.part, run.agg.first, run.image_size
    pretrained = "ImageNet" if run.meta["config"].get("pretrained_loaded") else "random"
    note = (
        f"Data: {root.name}/{category}, {first.n_images} test images "
        f"({first.n_anomalous} defective) at {size}x{size}; encoder init {pretrained}; "
        f"maps {run.cfg.resize}, grad norm {run.cfg.grad_norm}. The reproduction's columns "
        "used method 2 at the last conv layer."
    )
    if category not in MVTEC_PIXEL:
        note += f" No published numbers for category '{category}'."
    note += (" Published pixel AUROC of other map methods, mean over the 15 categories "
             "(context, not this category): " + "; ".join(
                 f"{name} {value:.2f}" for name, value in MVTEC_MAPS_MEAN_PIXEL_AUROC.items())
             + ".")
    return note


MVTEC = AnomalyExperiment(
    name="mvtec",
    model=MODEL,
    train=train_mvtec,
    default_layers=(ResNet18VAE.default_layer,),
    find_data=_find_data,
    load=_load,
    title=lambda run: f"MVTec-AD localisation ({run.source.part})",
    note=_note,
    references=lambda source: {"mvtec_pixel": MVTEC_PIXEL.get(str(source.part)),
                               "maps_mean_pixel_auroc": MVTEC_MAPS_MEAN_PIXEL_AUROC},
    tables=(("Pixel AUROC and best IoU (reproduction's Table 2)",
             lambda results, run: table2(results, run.cfg, str(run.source.part))),),
)
