"""Anomaly-localisation evaluation shared by UCSD and MVTec: one streaming pass over a test set.

Every setting (encoder layer x method x activation) and the reconstruction-error baseline is
scored in the same pass. Per batch and layer the engine is asked once per method for *signed*
maps at the layer's resolution (``per_dimension`` for method 1, ``method2``,
``normal_difference``); each activation is then applied to those signed maps exactly as the
engine does (activation per latent dimension, mean for method 1, bilinear upsampling, optional
min-max normalisation), so relu and abs share the gradient work. Each setting has its own
streaming accumulator from :mod:`vaecam.metrics.localization`; maps are never all kept, only the
few shown in the overlay figures.

Resolution (``resize``): ``upsample-maps`` upsamples maps to the input size and compares them
with the masks there; ``downscale-masks`` keeps maps at the layer's resolution and reduces the
masks with :func:`vaecam.data.transforms.downscale_masks` (``mask_rule``: a cell is anomalous
if at least half of it is, or if any pixel is). The baseline is always compared at the input
size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from vaecam.attention import AttentionExplainer, LatentStats
from vaecam.attention.activations import get_activation
from vaecam.attention.engine import GRAD_NORMS, METHODS, GradNorm
from vaecam.data.transforms import downscale_masks
from vaecam.errors import ConfigError, MetricInputError
from vaecam.metrics.baseline import ERROR_KINDS, ErrorKind, reconstruction_error
from vaecam.metrics.localization import LocalizationEvaluator, PixelROCAccumulator
from vaecam.report.tables import markdown_table, write_json
from vaecam.viz.curves import roc_figure
from vaecam.viz.overlays import explanation_grid

Resize = Literal["upsample-maps", "downscale-masks"]
RESIZE_MODES = ("upsample-maps", "downscale-masks")
BASELINE = "baseline"


@dataclass(frozen=True)
class Setting:
    """One column of results: a layer (table label), a method and an activation, or the
    baseline (``layer == "baseline"``, ``method`` the error kind, no activation)."""

    layer: str
    method: str
    activation: str = ""

    @property
    def name(self) -> str:
        if self.layer == BASELINE:
            return BASELINE
        method = "nd" if self.method == "normal-difference" else f"m{self.method}"
        return f"{self.layer} {method} {self.activation}"


@dataclass
class LocalizationConfig:
    """The switches of a localisation run; ``layers`` maps table labels to module names."""

    layers: dict[str, str]
    methods: Sequence[str] = ("1", "2")
    activations: Sequence[str] = ("relu", "abs")
    resize: Resize = "upsample-maps"
    grad_norm: GradNorm = "none"
    normalize: bool = False
    baseline: ErrorKind = "abs"
    mask_rule: Literal["majority", "any"] = "majority"
    max_fpr: float = 0.3

    def __post_init__(self) -> None:
        if not self.layers:
            raise ConfigError("no layers to explain; pass at least one --layer")
        for method in self.methods:
            if method not in METHODS:
                raise ConfigError(f"unknown method '{method}'; choose from {', '.join(METHODS)}")
        for activation in self.activations:
            get_activation(activation)
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"--resize must be one of {', '.join(RESIZE_MODES)}")
        if self.grad_norm not in GRAD_NORMS:
            raise ConfigError(f"--grad-norm must be one of {', '.join(GRAD_NORMS)}")
        if self.baseline not in ERROR_KINDS:
            raise ConfigError(f"--baseline must be one of {', '.join(ERROR_KINDS)}")
        if not self.methods or not self.activations:
            raise ConfigError("pass at least one --method and one --activation")

    def settings(self) -> list[Setting]:
        """The baseline first, then layer x method x activation in the order given."""
        return [Setting(BASELINE, self.baseline)] + [
            Setting(layer, method, activation)
            for layer in self.layers
            for method in self.methods
            for activation in self.activations
        ]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["methods"], data["activations"] = list(self.methods), list(self.activations)
        return data


def resolve_layers(model: nn.Module, requested: Sequence[str]) -> dict[str, str]:
    """Table label -> module name for layers given by label (``conv2``) or dotted name.

    Labels come from the model's ``conv_layers``; a name it does not list is its own label.
    """
    known: dict[str, str] = dict(getattr(model, "conv_layers", {}))
    inverse = {module: label for label, module in known.items()}
    modules = dict(model.named_modules())
    layers = {}
    for name in requested:
        module = known.get(name, name)
        if module not in modules:
            choices = ", ".join(f"{k} ({v})" for k, v in known.items()) or "its conv layers"
            raise ConfigError(f"unknown layer '{name}'; choose among {choices}")
        layers[inverse.get(module, name)] = module
    return layers


@dataclass
class Overlays:
    """The few test images shown in figures, with their maps per setting at input size."""

    images: list[Tensor] = field(default_factory=list)
    recons: list[Tensor] = field(default_factory=list)
    masks: list[Tensor] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    maps: dict[str, list[Tensor]] = field(default_factory=dict)


@dataclass
class Evaluation:
    """Metrics per setting name, pixel ROC curves (fpr, tpr) and the overlay samples."""

    settings: list[Setting]
    metrics: dict[str, dict[str, float]]
    curves: dict[str, tuple[np.ndarray, np.ndarray]]
    overlays: Overlays
    n_images: int
    n_anomalous: int
    image_level: bool


def _finish(maps: Tensor, size: tuple[int, int], cfg: LocalizationConfig, display: bool) -> Tensor:
    """(B, h, w) maps -> upsampled (if asked or for display) and optionally normalised."""
    if (cfg.resize == "upsample-maps" or display) and maps.shape[-2:] != size:
        maps = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    if cfg.normalize:
        lo = maps.amin(dim=(-2, -1), keepdim=True)
        hi = maps.amax(dim=(-2, -1), keepdim=True)
        maps = (maps - lo) / (hi - lo).clamp_min(1e-12)
    return maps


def layer_maps(
    explainer: AttentionExplainer,
    x: Tensor,
    cfg: LocalizationConfig,
    stats: LatentStats | None = None,
) -> dict[tuple[str, str], Tensor]:
    """(method, activation) -> (B, h, w) maps at the layer's resolution, activation applied.

    ``explainer`` must give signed maps (activation ``none``, no upsampling, no normalisation).
    """
    signed: dict[str, Tensor] = {}
    if "1" in cfg.methods:
        signed["1"] = explainer.per_dimension(x)
    if "2" in cfg.methods:
        signed["2"] = explainer.method2(x, grad_norm=cfg.grad_norm)[:, None]
    if "normal-difference" in cfg.methods:
        if stats is None:
            raise ConfigError("normal-difference needs latent statistics of the training data")
        signed["normal-difference"] = explainer.normal_difference(x, stats)[:, None]
    return {
        (method, act): get_activation(act)(signed[method]).mean(dim=1)
        for method in cfg.methods
        for act in cfg.activations
    }


class _Chunked:
    """Feeds a metrics accumulator in chunks of at least ``pixels`` pixels.

    Every update merges a batch into the accumulator's whole score table, whose size grows with
    the number of distinct scores seen, so a few large updates cost far less than many small
    ones. Memory stays bounded by one chunk of maps.
    """

    def __init__(self, image_level: bool, max_fpr: float, pixels: int = 1 << 22) -> None:
        self.max_fpr = max_fpr
        self.pixels = pixels
        self.acc = (
            LocalizationEvaluator(max_fpr) if image_level else PixelROCAccumulator(regions=True)
        )
        self._scores: list[Tensor] = []
        self._masks: list[Tensor] = []

    def update(self, scores: Tensor, masks: Tensor) -> None:
        self._scores.append(scores)
        self._masks.append(masks)
        if sum(s.numel() for s in self._scores) >= self.pixels:
            self.flush()

    def flush(self) -> None:
        if self._scores:
            self.acc.update(torch.cat(self._scores), torch.cat(self._masks))
            self._scores, self._masks = [], []

    def result(self) -> dict[str, float]:
        """All metrics; image AUROC only when the stream had normal and anomalous images."""
        self.flush()
        if isinstance(self.acc, LocalizationEvaluator):
            return self.acc.result()
        iou, threshold = self.acc.best_iou()
        return {"pixel_auroc": self.acc.auroc(), "best_iou": iou,
                "best_iou_threshold": threshold, "aupro": self.acc.aupro(self.max_fpr)}


def _plain_item(value: Any) -> Any:
    """A collated name part as a plain value (frame numbers arrive as 0-d tensors)."""
    return value.item() if torch.is_tensor(value) else value


def evaluate(
    model: nn.Module,
    batches: Iterable[Sequence[Any]],
    cfg: LocalizationConfig,
    overlay_indices: Iterable[int] = (),
    image_level: bool = True,
    stats: LatentStats | None = None,
    device: torch.device | str = "cpu",
) -> Evaluation:
    """Score every setting over ``batches`` of (images, masks, name, name) in one pass.

    ``overlay_indices`` are positions in the stream whose maps are kept for figures;
    ``image_level`` adds image AUROC (needs normal and anomalous images). Maps are computed on
    ``device`` (where ``model`` must be) and scored on the CPU.
    """
    settings = cfg.settings()
    accs = {s.name: _Chunked(image_level, cfg.max_fpr) for s in settings}
    explainers = {
        label: AttentionExplainer(model, module, activation="none", upsample=False)
        for label, module in cfg.layers.items()
    }
    keep = set(overlay_indices)
    overlays = Overlays(maps={s.name: [] for s in settings})
    seen = n_anomalous = 0
    model.eval()
    for images, masks, first, second in batches:
        size = (images.shape[-2], images.shape[-1])
        images, masks = images.to(device), masks.bool()
        with torch.no_grad():
            recons = model(images).recon
        maps = {BASELINE: reconstruction_error(images, recons, cfg.baseline)}
        for label, explainer in explainers.items():
            for (method, act), m in layer_maps(explainer, images, cfg, stats).items():
                maps[Setting(label, method, act).name] = m
        for name, m in maps.items():
            scored = _finish(m, size, cfg, display=False).cpu()
            target = masks if scored.shape[-2:] == masks.shape[-2:] else downscale_masks(
                masks, scored.shape[-2], scored.shape[-1], cfg.mask_rule)
            accs[name].update(scored, target)
        for i in range(images.shape[0]):
            if seen + i in keep:
                overlays.images.append(images[i].cpu())
                overlays.recons.append(recons[i].cpu())
                overlays.masks.append(masks[i])
                overlays.titles.append(f"{first[i]}/{_plain_item(second[i])}")
                for name, m in maps.items():
                    shown = _finish(m[i : i + 1], size, cfg, display=True)[0]
                    overlays.maps[name].append(shown.cpu())
        seen += images.shape[0]
        n_anomalous += int(masks.flatten(1).any(dim=1).sum())
    if seen == 0:
        raise ConfigError("the test set is empty; check --data and --max-images")
    metrics = {}
    for name, acc in accs.items():
        try:
            metrics[name] = acc.result()
        except MetricInputError as exc:
            raise MetricInputError(f"setting '{name}' ({cfg.resize}): {exc}") from exc
    curves = {name: acc.acc.roc_curve()[:2] for name, acc in accs.items()}
    return Evaluation(settings, metrics, curves, overlays, seen, n_anomalous, image_level)


# --- outputs -----------------------------------------------------------------------------------

METRIC_COLUMNS = {
    "pixel_auroc": "pixel AUROC",
    "best_iou": "best IoU",
    "best_iou_threshold": "IoU threshold",
    "aupro": "AUPRO (FPR<=0.3)",
    "image_auroc_max": "image AUROC (max)",
    "image_auroc_mean": "image AUROC (mean)",
}


def _cell(key: str, value: float) -> float | str:
    """Thresholds are raw map values of any scale: three significant digits, not decimals."""
    return f"{value:.3g}" if key == "best_iou_threshold" else value


def metrics_table(evaluation: Evaluation) -> str:
    """Every metric of every setting (rows) as a Markdown table."""
    keys = [k for k in METRIC_COLUMNS if k in evaluation.metrics[BASELINE]]
    rows = [
        [s.name] + [_cell(k, evaluation.metrics[s.name][k]) for k in keys]
        for s in evaluation.settings
    ]
    return markdown_table(["setting"] + [METRIC_COLUMNS[k] for k in keys], rows)


def best_settings(evaluation: Evaluation) -> dict[str, Setting]:
    """Per layer label (and the baseline), the setting with the highest pixel AUROC."""
    best: dict[str, Setting] = {}
    for s in evaluation.settings:
        auroc = evaluation.metrics[s.name]["pixel_auroc"]
        if s.layer not in best or auroc > evaluation.metrics[best[s.layer].name]["pixel_auroc"]:
            best[s.layer] = s
    return best


def write_figures(evaluation: Evaluation, out: Path, title: str) -> list[Path]:
    """ROC curves and overlay grids of the baseline and of each layer's best setting (all
    settings' numbers are in the tables)."""
    best = best_settings(evaluation)
    curves = {
        s.name: (*evaluation.curves[s.name], evaluation.metrics[s.name]["pixel_auroc"])
        for s in best.values()
    }
    paths = [roc_figure(out / "roc.png", curves, title=f"{title}: pixel ROC, best per layer")]
    ov = evaluation.overlays
    if not ov.images:
        return paths
    for layer, setting in best.items():
        titles = [f"{t}\n{setting.name}" for t in ov.titles]
        paths.append(explanation_grid(
            out / f"overlays_{layer}.png", torch.stack(ov.images), torch.stack(ov.recons),
            torch.stack(ov.maps[setting.name]), titles, torch.stack(ov.masks)))
    return paths


def overlay_indices(labels: Tensor, n: int) -> list[int]:
    """``n`` evenly spaced anomalous items (all items if none is anomalous)."""
    pool = torch.nonzero(labels).flatten().tolist() or list(range(len(labels)))
    if n <= 0 or not pool:
        return []
    picks = np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int)
    return sorted({pool[i] for i in picks})


def subset_indices(n_total: int, max_images: int | None) -> list[int]:
    """All indices, or ``max_images`` evenly spaced ones (a quick run that keeps both classes
    where the full set has them)."""
    if max_images is None or max_images >= n_total:
        return list(range(n_total))
    if max_images < 1:
        raise ConfigError(f"--max-images must be at least 1, not {max_images}")
    return sorted(set(np.linspace(0, n_total - 1, max_images).round().astype(int).tolist()))


def json_metrics(evaluation: Evaluation) -> list[dict[str, Any]]:
    """One record per setting: its switches and its metrics."""
    return [
        {"setting": s.name, "layer": s.layer, "method": s.method, "activation": s.activation,
         **evaluation.metrics[s.name]}
        for s in evaluation.settings
    ]


# --- a whole localisation run --------------------------------------------------------------------


def checkpoint_path(path: Path) -> Path:
    """A checkpoint file, or the last checkpoint of a training run folder."""
    path = Path(path)
    return path / "checkpoints" / "last.ckpt" if path.is_dir() else path


def resolve_device(name: str | None) -> torch.device:
    """``auto`` (or None): the GPU when one is visible, else the CPU; otherwise as named."""
    if not name or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} asked for, but no GPU is visible; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"unknown --device '{name}'; use auto, cpu or cuda[:N]") from exc


def config_from_options(
    model: nn.Module, options: dict[str, Any], default_layers: Sequence[str]
) -> LocalizationConfig:
    """The switches of a run from merged preset + command-line options.

    ``--no-upsample`` (shared attention option) means ``--resize downscale-masks`` here.
    """
    resize = "downscale-masks" if options.get("no_upsample") else options.get("resize")
    return LocalizationConfig(
        layers=resolve_layers(model, options.get("layer") or default_layers),
        methods=[str(m) for m in options.get("method") or ("1", "2")],
        activations=list(options.get("activation") or ("relu", "abs")),
        resize=resize or "upsample-maps",
        grad_norm=options.get("grad_norm") or "none",
        normalize=bool(options.get("normalize", False)),
        baseline=options.get("baseline") or "abs",
        mask_rule=options.get("mask_rule") or "majority",
    )


def run(
    model: nn.Module,
    test_set: Dataset,
    labels: Tensor,
    cfg: LocalizationConfig,
    options: dict[str, Any],
    stats_set: Dataset | None = None,
) -> Evaluation:
    """Evaluate ``model`` on ``test_set`` (image labels ``labels``) with ``options``'
    ``max_images``, ``eval_batch_size``, ``overlays`` and ``device``; pools latent statistics
    over ``stats_set`` when the normal-difference method is asked for."""
    indices = subset_indices(len(test_set), options.get("max_images"))
    labels = labels[indices]
    batch_size = int(options.get("eval_batch_size", 16))
    device = resolve_device(options.get("device"))
    model.to(device)
    stats = None
    if "normal-difference" in cfg.methods:
        if stats_set is None:
            raise ConfigError("normal-difference needs the training data to pool statistics")
        loader = DataLoader(stats_set, batch_size=batch_size)
        stats = LatentStats.from_batches(model, (x.to(device) for x in loader))
    loader = DataLoader(Subset(test_set, indices), batch_size=batch_size, shuffle=False)
    shown = overlay_indices(labels, int(options.get("overlays", 4)))
    image_level = bool(labels.any()) and not bool(labels.all())
    return evaluate(model, loader, cfg, shown, image_level, stats, device)


@dataclass
class Report:
    """Where a localisation run wrote its results, and its tables as Markdown."""

    out: Path
    table: str
    results: Path
    figures: list[Path]


def write_report(
    out: Path, evaluation: Evaluation, title: str, tables: Sequence[str], record: dict[str, Any]
) -> Report:
    """Write ``table.md``, ``results.json`` and the figures into ``out``."""
    figures = write_figures(evaluation, out, title)
    text = f"# {title}\n\n" + "\n".join(tables)
    (out / "table.md").write_text(text)
    payload = {
        **record,
        "n_images": evaluation.n_images,
        "n_anomalous_images": evaluation.n_anomalous,
        "image_level_metrics": evaluation.image_level,
        "results": json_metrics(evaluation),
        "table_md": text,
        "figures": [str(p) for p in figures],
    }
    results = write_json(out / "results.json", payload)
    return Report(out, text, results, figures)
