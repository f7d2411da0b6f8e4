"""MVTec-AD anomaly localisation: train the ResNet18-VAE on one category (augmented on the fly),
then the reproduction's Table 2 (pixel AUROC and best IoU) with AUPRO and image AUROC added.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vaecam.data.mvtec import MVTecTest, MVTecTrain
from vaecam.data.transforms import AugmentConfig
from vaecam.errors import ConfigError
from vaecam.experiments import localization as loc
from vaecam.experiments.training import train_vae
from vaecam.models.mvtec import ResNet18VAE
from vaecam.report.outputs import prepare_output_dir
from vaecam.report.references import MVTEC_PIXEL
from vaecam.report.tables import markdown_table
from vaecam.training.checkpoints import load_model
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
    train_set = MVTecTrain(root, category, size, augment, n_augmented or None, seed=cfg.seed)
    model_config = {
        "input_shape": [3, size, size],
        "latent_dim": int(options.get("latent_dim", 128)),
        "hidden": int(options.get("hidden", 1024)),
        "pretrained": bool(options.get("pretrained", False)),
    }
    data = {"kind": "mvtec", "root": root.resolve(), "category": category,
            "n_train_files": len(train_set.files), "n_train_items": len(train_set),
            "image_size": size, "augment": vars(augment) if augment else None}
    record = {"data": data, "train_options": options}
    return train_vae(MODEL, model_config, train_set, cfg, float(options.get("lr", 1e-4)), record)


def table2(evaluation: loc.Evaluation, category: str) -> str:
    """Pixel AUROC and best IoU of one category: the paper's and reproduction's numbers (known
    categories), then ours for the baseline and every layer x method x activation."""
    reference = MVTEC_PIXEL.get(category)
    ref_headers = ["paper", "repro relu", "repro abs"] if reference else []
    headers = ["category", "metric", *ref_headers,
               *(f"ours {s.name}" for s in evaluation.settings)]
    rows = []
    for i, (key, label) in enumerate((("pixel_auroc", "pixel AUROC"), ("best_iou", "best IoU"))):
        refs = list(reference[3 * i : 3 * i + 3]) if reference else []
        ours = [evaluation.metrics[s.name][key] for s in evaluation.settings]
        rows.append([category, label, *refs, *ours])
    return markdown_table(headers, rows, digits=3)


def localize_mvtec(options: dict[str, Any]) -> loc.Report:
    """Evaluate a trained ResNet18-VAE on one category's test set; write tables and figures."""
    checkpoint = loc.checkpoint_path(options["checkpoint"])
    model, meta = load_model(checkpoint, expected=MODEL)
    trained_on = meta.get("data", {})
    root = options.get("data") or trained_on.get("root")
    category = options.get("category") or trained_on.get("category")
    if not root or not category:
        raise ConfigError(
            "pass --data and --category (the checkpoint does not record its training data)"
        )
    root = Path(root)
    cfg = loc.config_from_options(model, options, [ResNet18VAE.default_layer])
    size = model.input_shape[1]
    test_set = MVTecTest(root, category, size)
    stats_set = MVTecTrain(root, category, size) if "normal-difference" in cfg.methods else None
    out = prepare_output_dir(options["out"], bool(options.get("overwrite", False)))
    evaluation = loc.run(model, test_set, test_set.labels, cfg, options, stats_set)
    pretrained = "ImageNet" if meta["config"].get("pretrained_loaded") else "random"
    note = (
        f"Data: {root.name}/{category}, {evaluation.n_images} test images "
        f"({evaluation.n_anomalous} defective) at {size}x{size}; encoder init {pretrained}; "
        f"maps {cfg.resize}, grad norm {cfg.grad_norm}, baseline {cfg.baseline} error. "
        "The reproduction's columns used method 2 at the last conv layer."
    )
    if category not in MVTEC_PIXEL:
        note += f" No published numbers for category '{category}'."
    tables = [
        "## Pixel AUROC and best IoU (reproduction's Table 2)\n", note + "\n\n",
        table2(evaluation, category), "\n## All metrics\n\n", loc.metrics_table(evaluation),
    ]
    record = {
        "experiment": "mvtec-localization",
        "checkpoint": checkpoint.resolve(),
        "model": {"name": meta["model"], "config": meta["config"]},
        "training": {k: meta.get(k) for k in ("seed", "data", "train_options")},
        "data": {"root": root.resolve(), "category": category, "image_size": size},
        "switches": {**cfg.to_json(), "max_images": options.get("max_images"),
                     "eval_batch_size": options.get("eval_batch_size"),
                     "device": str(loc.resolve_device(options.get("device"))),
                     "preset": options.get("preset")},
        "references": {"mvtec_pixel": MVTEC_PIXEL.get(category)},
    }
    return loc.write_report(out, evaluation, f"MVTec-AD localisation ({category})", tables,
                            record)
