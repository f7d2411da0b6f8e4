"""The one-class MNIST experiment: training, explanations, the localisation check, the demo.

Reproduces the MNIST figures of Liu et al. and of the reproduction study (Figure 1: activation
relu/abs/sigmoid x method 1/2 on digits 7 of a model trained on 1; Figure 2: trained on 1 shown
9, 2, 4 and trained on 3 shown 8, 5, method 1 + relu) and adds a number for claim 1: pixel AUROC
of attention maps and of the reconstruction-error baseline on digits with anomalies whose
pixels are known: pasted strokes, erased stroke ends or strokes drawn inside the digit (the
``anomaly`` option; see :mod:`vaecam.experiments.mnist_anomalies`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from vaecam.attention import AttentionExplainer
from vaecam.data.mnist import Digits, load_digits, one_class_split
from vaecam.errors import ConfigError
from vaecam.experiments.anomaly import (
    AnomalyExperiment,
    DataSource,
    LocalizationData,
    Localized,
    localize_models,
)
from vaecam.experiments.mnist_anomalies import DESCRIPTIONS, make_anomalies
from vaecam.experiments.mnist_regions import (
    DESCRIPTIONS as REGION_DESCRIPTIONS,
)
from vaecam.experiments.mnist_regions import evaluation_region, region_name
from vaecam.experiments.seeds import train_each_seed
from vaecam.experiments.training import loss_switches, tracking_callbacks
from vaecam.metrics.latent import latent_summary
from vaecam.models import VAE
from vaecam.outputs import atomic_write_text
from vaecam.report.localization import (
    collapse_warning,
    latent_table,
    method_table,
)
from vaecam.report.tables import write_json
from vaecam.training.checkpoints import load_model
from vaecam.training.module import VAEModule
from vaecam.training.run_folder import plain
from vaecam.training.trainer import TrainConfig, best_checkpoint, fit
from vaecam.viz.figures import save, subplots
from vaecam.viz.overlays import (
    add_scale,
    explanation_grid,
    show_image,
    show_overlay,
)

MODEL = "mnist-vae"


@dataclass
class MNISTData:
    """Where the digits come from."""

    source: str = "bundled"
    root: Path | None = None
    download: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> MNISTData:
        """From ``source``, ``mnist_root`` and ``download``."""
        return cls(options.get("source") or "bundled", options.get("mnist_root"),
                   bool(options.get("download", False)))

    def load(self) -> Digits:
        return load_digits(self.source, self.root, self.download)


def train_one_class(digit: int, cfg: TrainConfig, data: MNISTData, latent_dim: int = 32,
                    lr: float = 1e-3, options: dict[str, Any] | None = None) -> Path:
    """Train the authors' MNIST VAE on one digit; returns the best checkpoint."""
    split = one_class_split(data.load(), digit, seed=SPLIT_SEED)
    record = {"kind": "mnist", "source": data.source, "root": data.root, "digit": digit,
              "n_train": len(split.train)}
    module = VAEModule(MODEL, {"latent_dim": latent_dim}, lr=lr, seed=cfg.seed,
                       **loss_switches(options or {}),
                       extra_metadata={"digit": digit, "data_source": data.source,
                                       "data": plain(record), "seed": cfg.seed})
    inputs = [data.root] if data.root else []
    callbacks: list = []
    if options and options.get("track_localization"):
        protocol = anomaly_protocol(options)
        test_set = DigitAnomalies(data.load(), digit, int(options.get("n_anomalies") or 200),
                                  protocol)
        callbacks, cfg = tracking_callbacks(options, cfg, test_set, test_set.labels,
                                            {"latent_dim": latent_dim}, MODEL,
                                            list(MNIST_LAYERS), f"held-out {digit}s with "
                                            f"{DESCRIPTIONS[protocol]}")
    fit(module, split.train_dataset(), cfg, val_set=split.val_dataset(), data=plain(record),
        inputs=inputs, callbacks=callbacks)
    return best_checkpoint(cfg.out_dir)


def train_mnist(options: dict[str, Any], cfg: TrainConfig) -> Path:
    """:func:`train_one_class` on ``options["digit"]`` (the spec's training function)."""
    return train_one_class(int(options["digit"]), cfg, MNISTData.from_options(options),
                           latent_dim=int(options["latent_dim"]), lr=float(options["lr"]),
                           options=options)


@torch.no_grad()
def reconstruct(model: VAE, x: Tensor) -> Tensor:
    model.eval()
    return model(x).recon


def explain_digits(checkpoint: Path, digits: Sequence[int], out: Path, method: str = "1",
                   activation: str = "relu", layer: str | None = None, n_per_digit: int = 6,
                   data: MNISTData | None = None, seed: int = 0, **attention: Any) -> dict:
    """Write a PNG grid (input, reconstruction, overlay) and the raw maps (.npz) per digit, and
    ``explain.json`` with the latent health of the model on the held-out digits of its class
    (``latent``: KL, active units, spread of mu; ``collapsed`` when no unit is active)."""
    model, meta = load_model(checkpoint, expected=MODEL)
    layer = layer or model.default_layer
    explainer = AttentionExplainer(model, layer, activation=activation,
                                   upsample=attention.pop("upsample", True),
                                   normalize=attention.pop("normalize", False),
                                   activation_order=attention.pop("activation_order", "before"),
                                   chunk_size=attention.pop("chunk_size", None))
    all_digits = (data or MNISTData()).load()
    gen = torch.Generator().manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {"checkpoint": str(checkpoint), "layer": layer, "method": method,
                               "activation": activation, "files": []}
    for digit in digits:
        pool = all_digits.of(digit)
        if len(pool) == 0:
            raise ConfigError(f"no images of digit {digit} in the data")
        x = pool[torch.randperm(len(pool), generator=gen)[:n_per_digit]]
        maps = explainer.explain(x, method, **attention)
        stem = f"digit{digit}_method{method}_{activation}_{layer.replace('.', '-')}"
        png = explanation_grid(out / f"{stem}.png", x, reconstruct(model, x), maps,
                               titles=[f"{digit}"] * len(x))
        npz = out / f"{stem}.npz"
        np.savez_compressed(npz, images=x.numpy(), maps=maps.numpy(), digit=digit,
                            layer=layer, method=method, activation=activation)
        written["files"] += [str(png), str(npz)]
    trained = meta.get("digit")
    if trained is not None:
        held_out = one_class_split(all_digits, int(trained), seed=SPLIT_SEED).val
        written["latent"] = latent_summary(model, held_out)
    write_json(out / "explain.json", {**written, "trained_digit": trained})
    return written


# The held-out digits and the anomalous test set do not depend on the training seed, so
# every seed's model is scored on the same images (and the same bootstrap resamples).
SPLIT_SEED = 0
MNIST_LAYERS = {"conv2": "encoder.2", "conv1": "encoder.0"}


def anomaly_protocol(options: dict[str, Any]) -> str:
    """The localisation protocol named by ``options`` (``pasted`` when none is)."""
    return str(options.get("anomaly") or "pasted")


class DigitAnomalies(Dataset):
    """Held-out digits of the trained class: ``n`` with an anomaly of ``protocol`` (see
    :mod:`vaecam.experiments.mnist_anomalies`), plus the clean ones.

    Items are (image (1, 28, 28), mask (28, 28) bool, protocol|"clean", index), the layout
    :func:`vaecam.experiments.localization.evaluation.evaluate` reads; ``labels`` marks
    anomalous images and ``clean`` holds each item's clean digit (the digit an anomaly was made
    of; a clean item itself), from which evaluation regions are computed.
    """

    def __init__(self, digits: Digits, digit: int, n: int, protocol: str = "pasted"):
        split = one_class_split(digits, digit, seed=SPLIT_SEED)
        anomalous, masks, clean = make_anomalies(protocol, split.val, split.others.images, n,
                                                 seed=SPLIT_SEED)
        self.protocol = protocol
        self.clean = torch.cat([clean, split.val])
        self.images = torch.cat([anomalous, split.val])
        self.masks = torch.cat([masks, torch.zeros(len(split.val), *masks.shape[1:],
                                                   dtype=torch.bool)])
        self.labels = torch.arange(len(self.images)) < n

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, str, int]:
        kind = self.protocol if bool(self.labels[index]) else "clean"
        return self.images[index], self.masks[index], kind, index


def _find_data(options: Mapping[str, Any], trained_on: Mapping[str, Any]) -> DataSource:
    """The digits (``source``, ``mnist_root``) and the trained digit (``digit``, default: the
    one the model was trained on) as the source's part."""
    digit = options.get("digit")
    digit = int(digit if digit is not None else trained_on.get("digit", 1))
    return DataSource(MNISTData.from_options(options).root, part=str(digit))


def _load(source: DataSource, size: int, seeds: Sequence[int], options: Mapping[str, Any]
          ) -> LocalizationData:
    """Held-out digits of the trained class with anomalies of protocol ``options["anomaly"]``,
    scored in the evaluation region ``options["region"]`` (default: the protocol's, see
    :mod:`vaecam.experiments.mnist_regions`); map options tuned on the training digits."""
    digit, protocol = int(str(source.part)), anomaly_protocol(options)
    data = MNISTData.from_options(options)
    digits = data.load()
    n = int(options.get("n_anomalies") or 200)
    test_set = DigitAnomalies(digits, digit, n, protocol)
    train = one_class_split(digits, digit, seed=SPLIT_SEED).train
    region = region_name(options, protocol)
    return LocalizationData(
        test_set, test_set.labels, {seed: TensorDataset(train) for seed in seeds},
        record={"source": data.source, "root": str(data.root) if data.root else None,
                "digit": digit, "n_train": len(train)},
        switches={"anomaly": protocol, "region": region, "n_anomalies": n},
        region=region, regions=evaluation_region(region, test_set.clean), tune_images=train)


def _note(run: Localized) -> str:
    digit, protocol, first = run.source.part, run.data.switches["anomaly"], run.agg.first
    return (f"Trained on {digit}; protocol '{protocol}': {first.n_anomalous} held-out {digit}s "
            f"with {DESCRIPTIONS[protocol]} and {first.n_images - first.n_anomalous} clean ones.")


def _region_rule(run: Localized) -> str:
    return (f"Evaluation region '{run.cfg.region}': pixel AUROC, AUPRO and best IoU count "
            f"{REGION_DESCRIPTIONS[run.cfg.region]} (image AUROC: whole maps).")


MNIST = AnomalyExperiment(
    name="mnist",
    model=MODEL,
    train=train_mnist,
    default_layers=tuple(MNIST_LAYERS),
    find_data=_find_data,
    load=_load,
    title=lambda run: (f"MNIST localisation ({run.data.switches['anomaly']}), trained on "
                       f"{run.source.part}"),
    note=_note,
    references=lambda source: {},
    preamble=_region_rule,
    record=lambda run: {"digit": int(str(run.source.part)),
                        "anomaly": run.data.switches["anomaly"], "region": run.cfg.region,
                        "region_rule": REGION_DESCRIPTIONS[run.cfg.region]},
)


def figure_methods(model: VAE, images: Tensor, path: Path, layer: str) -> Path:
    """Reproduction Figure 1: rows relu/abs/sigmoid, columns method 1 | method 2."""
    acts = ("relu", "abs", "sigmoid")
    n = len(images)
    fig, axes = subplots(len(acts) + 1, 2 * n, layout="constrained",
                         figsize=(1.3 * 2 * n + 1.0, 1.3 * (len(acts) + 1)))
    for m_idx, method in enumerate(("1", "2")):
        for i in range(n):
            show_image(axes[0, m_idx * n + i], images[i],
                       f"method {method}" if i == n // 2 else None)
        for a_idx, act in enumerate(acts):
            maps = AttentionExplainer(model, layer, activation=act).explain(images, method)
            for i in range(n):
                heat = show_overlay(axes[a_idx + 1, m_idx * n + i], images[i], maps[i])
            axes[a_idx + 1, 0].text(-0.2, 0.5, act, transform=axes[a_idx + 1, 0].transAxes,
                                    rotation=90, va="center", ha="right", fontsize=9)
    add_scale(fig, axes, heat)
    return save(fig, path)


def figure_one_class(panels: Sequence[tuple[int, int, VAE, Tensor]], path: Path,
                     layer: str) -> Path:
    """Reproduction Figure 2: per (trained digit, shown digit) panel, inputs over overlays."""
    cols = sum(len(p[3]) for p in panels)
    fig, axes = subplots(2, cols, figsize=(1.3 * cols + 1.0, 2.9), squeeze=False,
                         layout="constrained")
    col = 0
    for trained, shown, model, images in panels:
        maps = AttentionExplainer(model, layer, activation="relu").method1(images)
        for i in range(len(images)):
            title = f"train {trained}, show {shown}" if i == 0 else None
            show_image(axes[0, col], images[i], title)
            heat = show_overlay(axes[1, col], images[i], maps[i])
            col += 1
    add_scale(fig, axes, heat)
    return save(fig, path)


FIGURE1 = "figure1_methods_activations.png"
FIGURE2 = "figure2_one_class.png"


def demo_figures(models: dict[int, VAE], digits: Digits, out: Path, seed: int
                 ) -> tuple[Path, Path]:
    """Figures 1 and 2 of the reproduction from the models trained on 1 and on 3 (images drawn
    from ``seed``): Figure 1 on three 7s, Figure 2 on 9, 2, 4 and on 8, 5."""
    gen = torch.Generator().manual_seed(seed)

    def pick(d: int, k: int) -> Tensor:
        pool = digits.of(d)
        return pool[torch.randperm(len(pool), generator=gen)[:k]]

    out.mkdir(parents=True, exist_ok=True)
    layer = models[1].default_layer
    fig1 = figure_methods(models[1], pick(7, 3), out / FIGURE1, layer)
    panels = [(1, 9, models[1], pick(9, 2)), (1, 2, models[1], pick(2, 2)),
              (1, 4, models[1], pick(4, 2)), (3, 8, models[3], pick(8, 2)),
              (3, 5, models[3], pick(5, 2))]
    return fig1, figure_one_class(panels, out / FIGURE2, layer)


def run_demo(out: Path, cfg_for: Any, data: MNISTData, options: dict[str, Any],
             seeds: list[int]) -> Path:
    """Train on digits 1 and 3 (one model per seed), write both figures, the localisation tables
    (every map, mean ± std over seeds, intervals and verdicts) and report.md.

    ``cfg_for(name)`` returns the :class:`TrainConfig` of the runs trained in ``out/name``.
    """
    start = time.time()
    digits = data.load()
    models: dict[int, dict[int, VAE]] = {}
    checkpoints: dict[int, dict[int, Path]] = {}
    metas: dict[int, dict[int, dict[str, Any]]] = {}
    for digit in (1, 3):
        cfg = cfg_for(f"model_digit{digit}")
        checkpoints[digit] = train_each_seed(
            lambda run_cfg, d=digit: train_one_class(d, run_cfg, data,
                                                     int(options["latent_dim"]),
                                                     float(options["lr"]), options),
            cfg, seeds)
        loaded = {s: load_model(p, expected=MODEL) for s, p in checkpoints[digit].items()}
        models[digit] = {s: model for s, (model, _) in loaded.items()}
        metas[digit] = {s: meta for s, (_, meta) in loaded.items()}
    first = {d: models[d][seeds[0]] for d in (1, 3)}
    fig1, fig2 = demo_figures(first, digits, out, seeds[0])
    localization = {}
    for digit in (1, 3):
        folder = out / f"localization_digit{digit}"
        folder.mkdir(exist_ok=True)
        localization[str(digit)] = localize_models(
            MNIST, models[digit], metas[digit], checkpoints[digit],
            DataSource(data.root, part=str(digit)), options, folder)
    payload = {"figures": {"figure1": str(fig1), "figure2": str(fig2)},
               "checkpoints": {str(d): {str(s): str(p) for s, p in c.items()}
                               for d, c in checkpoints.items()},
               "localization": localization, "data_source": data.source, "seeds": seeds,
               "n_anomalies": int(options.get("n_anomalies") or 200),
               "anomaly": anomaly_protocol(options),
               "seconds": round(time.time() - start, 1)}
    write_json(out / "results.json", payload)
    report = out / "report.md"
    atomic_write_text(report, demo_report(payload))
    return report


def demo_report(results: dict[str, Any]) -> str:
    """report.md of the demo: the two figures and, per trained digit, the localisation tables."""
    seeds = ", ".join(map(str, results["seeds"]))
    lines = [
        "# vaecam demo: one-class MNIST",
        "",
        f"Data: MNIST digits from the '{results['data_source']}' source. VAEs with the authors' "
        f"architecture (latent 32, summed BCE + KL) trained on digit 1 and on digit 3, one per "
        f"seed ({seeds}).",
        "",
        "## Figure 1 (reproduction paper, Figure 1)",
        "Model trained on 1 (first seed), shown three 7s; rows: activation relu / abs / sigmoid; "
        "left block method 1 (mean of per-dimension maps), right block method 2 (gradient of "
        "sum(mu)); layer `encoder.2`. Each overlay's colour scale spans that map's own min..max, "
        "so sigmoid maps (all values near 0.5, which is why the reproduction found them poor) "
        "look like the signed map they are a monotonic transform of.",
        f"![figure 1]({Path(results['figures']['figure1']).name})",
        "",
        "## Figure 2 (reproduction paper, Figure 2)",
        "Method 1 with ReLU; trained on 1 and shown 9, 2, 4; trained on 3 and shown 8, 5.",
        f"![figure 2]({Path(results['figures']['figure2']).name})",
        "",
        "## Localisation check (a number for claim 1)",
        f"Protocol '{results['anomaly']}': {results['n_anomalies']} held-out digits of the "
        f"trained class, each with {DESCRIPTIONS[results['anomaly']]}, and the clean "
        "held-out digits as normal images. Every cell: mean ± std over seeds [95% two-level "
        "bootstrap interval: seeds, then test images]; two verdicts, against recon-abs and "
        "against the better trivial reference (mean-diff or random); a map wins only when both "
        "are better. "
        "Neither paper reports a number here, so there is no published column.",
    ]
    for digit, loc_results in results["localization"].items():
        warning = collapse_warning(loc_results)
        lines += ["", f"### Trained on {digit}", "", latent_table(loc_results),
                  *([f"**{warning}**", ""] if warning else []),
                  method_table(loc_results), "",
                  f"Every setting: `localization_digit{digit}/table.md`; overlays of every map: "
                  f"![maps, trained on {digit}](localization_digit{digit}/overlays_methods.png)"]
    lines += ["", f"Machine-readable results: `results.json`. Run time: {results['seconds']} s.",
              ""]
    return "\n".join(map(str, lines))  # tables as Markdown
