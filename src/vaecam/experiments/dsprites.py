"""The dSprites disentanglement experiment: FactorVAE vs AD-FactorVAE (Liu et al. 2020, Sec. 4.3).

* :func:`train` trains one model (FactorVAE of Kim & Mnih 2018, or AD-FactorVAE with the
  attention disentanglement loss) and returns its last checkpoint.
* :func:`score` computes the FactorVAE metric (with a named size preset), MIG and the
  reconstruction error on a fixed seeded sample, and writes ``score.json``.
* :func:`sweep` trains and scores a grid gamma x model x seed and writes a results table
  (Markdown + JSON) and the scatter plot of the reproduction's Figure 5b, with the published
  numbers beside ours (:func:`write_summary`, shared with ``vaecam reproduce``).
* :func:`paired_by_gamma` compares AD-FactorVAE with FactorVAE across seeds (claim 3): each
  model's mean ± std, the paired seed bootstrap's interval of the mean difference (the
  verdict) and the exact Wilcoxon signed-rank test (:mod:`vaecam.metrics.paired`).
* :func:`cost_line` says what a set of runs costs at the preset's estimate, before training.

Data: ``procedural`` (dSprites-like images rendered on the fly, no download) or the path of the
official ``.npz``. Every number is traced to the options saved beside it (``score.json``,
``train_config.json``, the checkpoint's ``vaecam`` entry).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vaecam.configs import estimates
from vaecam.data.dsprites import load_dsprites
from vaecam.data.ground_truth import GroundTruthData
from vaecam.errors import ConfigError
from vaecam.metrics.disentanglement import (
    FACTORVAE_METRIC_PRESETS,
    factor_vae_metric,
    mig,
    torch_representation,
)
from vaecam.metrics.paired import MIN_SEEDS, paired_seed_test
from vaecam.models.factorvae import FactorVAE
from vaecam.outputs import FolderLock, OutputFolder, adopt, atomic_write_text
from vaecam.outputs.portable import PortablePaths, resolve_paths
from vaecam.report.document import format_duration, interval, mean_std
from vaecam.report.references import DSPRITES_FACTORVAE_SCORE
from vaecam.report.table import Table
from vaecam.report.tables import fmt, write_json
from vaecam.training.checkpoints import load_model, read_checkpoint
from vaecam.training.factorvae_module import (
    DEFAULT_SCORE_SIZES,
    ADLossSettings,
    FactorVAEModule,
    OptimiserSettings,
    ScoreSettings,
)
from vaecam.training.run_folder import identity_differences, read_run_record
from vaecam.training.trainer import TrainConfig, fit, last_checkpoint, run_identity
from vaecam.viz.scatter import disentanglement_scatter

MODEL = "factorvae"
EXPERIMENT = "dsprites"


@dataclass
class DSpritesConfig:
    """What to train: model variant, loss weights, AD options, data source."""

    model: str = "factorvae"
    gamma: float = 40.0
    lambda_ad: float = 1.0
    latent_dim: int = 32
    init: str = "default"
    ad_layer: str | None = None
    ad_activation: str = "relu"
    ad_pairs: str | int = "all"
    ad_aggregation: str = "mean"
    lr: float = 1e-4
    d_lr: float = 1e-4
    dsprites: str = "procedural"
    score_every: int = 0
    score_sizes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SCORE_SIZES))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> DSpritesConfig:
        """Read merged CLI/preset options (``lambda`` is the AD weight)."""
        values = {f.name: options[f.name] for f in dataclasses.fields(cls) if f.name in options}
        if "lambda" in options:
            values["lambda_ad"] = options["lambda"]
        config = cls(**values)
        config.ad_pairs = parse_pairs(config.ad_pairs)
        return config


@dataclass
class ScoreConfig:
    """How to score: FactorVAE metric preset (sizes overridable), MIG and recon sample sizes."""

    metric_preset: str = "reproduction"
    metric_sizes: dict[str, int] = field(default_factory=dict)
    mig_num_train: int = 10000
    recon_samples: int = 10000
    metric_seed: int = 0
    dsprites: str | None = None  # None: the source the model was trained on

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ScoreConfig:
        values = {f.name: options[f.name] for f in dataclasses.fields(cls) if f.name in options}
        config = cls(**values)
        if config.metric_preset not in FACTORVAE_METRIC_PRESETS:
            choices = ", ".join(FACTORVAE_METRIC_PRESETS)
            raise ConfigError(f"unknown metric preset '{config.metric_preset}'; choose: {choices}")
        return config

    def factorvae_sizes(self) -> dict[str, int]:
        return {**FACTORVAE_METRIC_PRESETS[self.metric_preset], **self.metric_sizes}


def parse_pairs(value: str | int) -> str | int:
    """``all`` or a positive pair count, from a CLI string or a YAML value."""
    if value == "all" or isinstance(value, int):
        return value
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"--ad-pairs must be 'all' or a number of pairs, not '{value}'") from None


def build_module(config: DSpritesConfig, seed: int, data: GroundTruthData | None = None
                 ) -> FactorVAEModule:
    """The Lightning module of one FactorVAE / AD-FactorVAE run (``data`` for periodic scores)."""
    return FactorVAEModule(
        {"latent_dim": config.latent_dim, "init": config.init},
        variant=config.model,
        gamma=config.gamma,
        ad=ADLossSettings(
            lambda_ad=config.lambda_ad,
            ad_layer=config.ad_layer,
            ad_activation=config.ad_activation,
            ad_pairs=config.ad_pairs,
            ad_aggregation=config.ad_aggregation,
        ),
        optimisers=OptimiserSettings(lr=config.lr, d_lr=config.d_lr),
        seed=seed,
        scoring=ScoreSettings(
            score_every=config.score_every if data is not None else 0,
            score_sizes=config.score_sizes,
            score_data=data,
        ),
        extra_metadata={"dsprites": str(config.dsprites)},
    )


def _data_record(config: DSpritesConfig) -> dict[str, str]:
    return {"kind": "dsprites", "source": str(config.dsprites)}


def train(config: DSpritesConfig, run: TrainConfig) -> Path:
    """Train one FactorVAE / AD-FactorVAE on dSprites; returns the last checkpoint."""
    if run.batch_size < 4:
        raise ConfigError(f"batch size {run.batch_size} is too small; FactorVAE needs at least 4")
    data = load_dsprites(config.dsprites)
    module = build_module(config, run.seed, data)
    source = str(config.dsprites)
    inputs = [Path(source)] if source != "procedural" else []
    fit(module, data.torch_dataset(), run, data=_data_record(config), inputs=inputs)
    return last_checkpoint(run.out_dir)


def same_run(folder: Path, config: DSpritesConfig, run: TrainConfig) -> list[str]:
    """How the finished run in ``folder`` differs from what ``config`` and ``run`` would train
    (empty when it is the same run)."""
    record = read_run_record(folder) or {}
    identity = run_identity(build_module(config, run.seed), run, _data_record(config))
    return identity_differences(record.get("identity", {}), identity)


@torch.no_grad()
def reconstruction_error(
    model: FactorVAE,
    data: GroundTruthData,
    num_samples: int,
    seed: int = 0,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> float:
    """Mean over ``num_samples`` seeded random images of the BCE summed over pixels (z = mu)."""
    rng = np.random.default_rng(seed)
    factors = data.sample_factors(num_samples, rng)
    model.eval()
    total = 0.0
    for start in range(0, num_samples, batch_size):
        x = torch.from_numpy(data.observations_from_factors(factors[start : start + batch_size]))
        x = x.to(device)
        mu, _ = model.encode(x)
        bce = F.binary_cross_entropy_with_logits(model.decode_logits(mu), x, reduction="sum")
        total += float(bce)
    return total / num_samples


def score(checkpoint: Path, config: ScoreConfig, out: Path, progress: bool = False
          ) -> dict[str, Any]:
    """FactorVAE metric, MIG and reconstruction error of a checkpoint; writes ``out/score.json``
    (paths relative to ``out``, see :func:`read_score`).

    ``out`` is locked while scoring; an existing ``score.json`` is replaced (it is vaecam's).
    """
    started = time.perf_counter()
    model, meta = load_model(checkpoint, expected=MODEL)
    step = int(read_checkpoint(checkpoint).get("global_step", 0))
    source = config.dsprites or meta.get("dsprites", "procedural")
    data = load_dsprites(source)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    represent = torch_representation(model, device)
    sizes = config.factorvae_sizes()
    factorvae = factor_vae_metric(data, represent, config.metric_seed, progress=progress, **sizes)
    mig_result = mig(data, represent, config.metric_seed, num_train=config.mig_num_train)
    recon = reconstruction_error(model, data, config.recon_samples, config.metric_seed,
                                 device=device)
    result = {
        "checkpoint": str(checkpoint),
        "model": meta.get("variant", MODEL),
        "gamma": meta.get("gamma"),
        "lambda": meta.get("lambda"),
        "ad": meta.get("ad"),
        "latent_dim": model.latent_dim,
        "init": model.config.get("init"),
        "train_seed": meta.get("seed"),
        "steps": step,
        "dsprites": str(source),
        "metric_preset": config.metric_preset,
        "metric_sizes": sizes,
        "metric_seed": config.metric_seed,
        "factorvae": factorvae["eval_accuracy"],
        "factorvae_train": factorvae["train_accuracy"],
        "num_active_dims": factorvae["num_active_dims"],
        "active_dims": [int(d) for d in factorvae["active_dims"]],
        "mig": mig_result["mig"],
        "mig_per_factor": dict(
            zip(mig_result["factor_names"], map(float, mig_result["per_factor"]), strict=True)
        ),
        "recon_error": recon,
        "recon_samples": config.recon_samples,
        "mig_num_train": config.mig_num_train,
        "seconds": round(time.perf_counter() - started, 2),
        "references": DSPRITES_FACTORVAE_SCORE,
    }
    with FolderLock(Path(out)):
        adopt(write_json(Path(out) / "score.json", PortablePaths.anchored(out)(result)))
    return result


def read_score(folder: Path) -> dict[str, Any]:
    """The ``score.json`` in ``folder``, its paths absolute again."""
    return resolve_paths(json.loads((Path(folder) / "score.json").read_text()), folder)


@dataclass
class SweepConfig:
    """The grid: every model x gamma x seed is trained and scored."""

    gammas: Sequence[float] = (20.0, 40.0, 100.0)
    models: Sequence[str] = ("factorvae", "ad-factorvae")
    seeds: Sequence[int] = (0, 1, 2)


def run_dir(out: Path, model: str, gamma: float, seed: int) -> Path:
    """``OUT/<model>_gamma<G>/seed<S>``: the layout of ``vaecam train dsprites --seeds ... --out
    OUT/<model>_gamma<G>``, so that runs trained on their own are found and reused."""
    return Path(out) / f"{model}_gamma{gamma:g}" / f"seed{seed}"


def _scored_with(result: Mapping[str, Any], config: ScoreConfig) -> bool:
    """Whether a ``score.json`` was computed with these metric settings."""
    return (result.get("metric_preset") == config.metric_preset
            and result.get("metric_sizes") == config.factorvae_sizes()
            and result.get("metric_seed") == config.metric_seed
            and result.get("recon_samples") == config.recon_samples
            and result.get("mig_num_train", config.mig_num_train) == config.mig_num_train)


def sweep(
    grid: SweepConfig,
    config: DSpritesConfig,
    score_config: ScoreConfig,
    run: TrainConfig,
    out: Path,
    progress: bool = False,
) -> dict[str, Any]:
    """Train and score every run of ``grid`` (in :func:`run_dir`); write the summary
    (:func:`write_summary`: ``results.md``, ``results.json``, Figure 5b) into ``out``.

    A finished run of the same options is reused (rescored when the metric settings changed);
    one with a checkpoint is resumed (a finished one just continues to its score);
    ``run.overwrite`` retrains everything.
    """
    out = Path(out)
    rows: list[dict[str, Any]] = []
    grid_runs = [(m, g, s) for m in grid.models for g in grid.gammas for s in grid.seeds]
    with OutputFolder(out, "sweep dsprites", overwrite=run.overwrite, keep=not run.overwrite):
        for k, (model, gamma, seed) in enumerate(grid_runs, 1):
            folder = run_dir(out, model, gamma, seed)
            print(f"run {k}/{len(grid_runs)}: {model}, gamma {gamma:g}, seed {seed} ({folder})",
                  flush=True)
            run_config = dataclasses.replace(config, model=model, gamma=gamma)
            run_cfg = dataclasses.replace(run, out_dir=folder, seed=seed, overwrite=False,
                                          resume=last_checkpoint(folder).is_file())
            scored = folder / "score.json"
            if scored.is_file():
                differences = same_run(folder, run_config, run_cfg)
                if differences:
                    raise ConfigError(f"{folder} was trained with other options: "
                                      f"{differences[0]}; pass --overwrite to retrain the sweep "
                                      "or choose another --out")
                previous = read_score(folder)
                if _scored_with(previous, score_config):
                    rows.append(previous)
                    continue
            ckpt = train(run_config, run_cfg)
            rows.append(score(ckpt, score_config, folder, progress=progress))
        written = write_summary(out, rows, "results.md", "dSprites sweep", (
            f"Metric preset: {score_config.metric_preset} {score_config.factorvae_sizes()}; "
            f"data: {config.dsprites}."))
    return written


def cost_line(preset: str, models: Sequence[str], gammas: Sequence[float], seeds: Sequence[int],
              scored: bool = True, finished: int = 0) -> str:
    """What a set of runs costs at the preset's per-run estimate (``estimates:`` in
    dsprites.yaml: train, plus score when ``scored``), printed before anything trains."""
    runs = len(models) * len(gammas) * len(seeds)
    grid = " x ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in
                      ((len(models), "model"), (len(gammas), "gamma"), (len(seeds), "seed")))
    table = estimates(EXPERIMENT, preset)
    per_run = table.get("train", 0.0) + (table.get("score", 0.0) if scored else 0.0)
    if per_run <= 0:
        return f"dSprites {preset}: {runs} runs ({grid}); this preset has no time estimate"
    what = "train + score" if scored else "train"
    line = (f"dSprites {preset}: {runs} runs ({grid}) x ~{format_duration(per_run)} ({what}) "
            f"= ~{format_duration(runs * per_run)} at the preset's estimate")
    if finished:
        line += (f"; {finished} already done, ~{format_duration((runs - finished) * per_run)} "
                 "left")
    return line


# --- the summary: per-model means and AD-FactorVAE against FactorVAE across seeds ------------

PAIRED_RESAMPLES = 10_000  # seed bootstrap resamples of the mean difference
PAIRED_SEED = 0
AD, BASE = "ad-factorvae", "factorvae"  # the paired difference is AD minus BASE
PAIRED_NOTE = (
    "AD-FactorVAE minus FactorVAE (FactorVAE metric), paired by training seed (same seed, same "
    "gamma). The seed is the unit: 95% interval of the mean difference from a paired seed "
    f"bootstrap ({PAIRED_RESAMPLES:,} resamples of the seeds with replacement, percentile "
    "interval), and the exact two-sided Wilcoxon signed-rank test of the differences (zeros "
    "dropped, ties at mean rank). Verdict from the interval: better (worse) when it lies above "
    f"(below) 0, else undecided; with fewer than {MIN_SEEDS} seeds always undecided, as the "
    "percentile interval of so few seeds is too narrow and the smallest possible p, 2/2^n, "
    "is above 0.05 (0.25 for 3 seeds, 0.002 for 10). Std: sample standard deviation over "
    "seeds (n - 1). Per seed, the metric-noise interval is the 95% "
    "interval of that seed's difference from 1,000 binomial resamples of each model's "
    "evaluation votes (the FactorVAE metric's own sampling noise)."
)


PAIRED_HEADERS = ["gamma", "seeds", "AD-FactorVAE (mean ± std)", "FactorVAE (mean ± std)",
                  "AD - FactorVAE (mean ± std)", "95% interval (seed bootstrap)", "Wilcoxon W",
                  "Wilcoxon p", "verdict"]
PER_SEED_HEADERS = ["gamma", "seed", "AD-FactorVAE", "FactorVAE", "difference",
                    "metric-noise 95% interval"]


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample std (n - 1; None for one run) of the scores over seeds, per (model,
    gamma)."""
    keys = list(dict.fromkeys((row["model"], row["gamma"]) for row in rows))
    summary = []
    for model, gamma in keys:
        group = [row for row in rows if (row["model"], row["gamma"]) == (model, gamma)]
        scores = np.array([row["factorvae"] for row in group], dtype=float)
        summary.append({
            "model": model,
            "gamma": gamma,
            "runs": len(group),
            "factorvae_mean": float(scores.mean()),
            "factorvae_std": float(scores.std(ddof=1)) if len(group) > 1 else None,
            "mig_mean": float(np.mean([row["mig"] for row in group])),
            "recon_mean": float(np.mean([row["recon_error"] for row in group])),
        })
    return summary


def _votes_ci(acc_a: float, acc_b: float, n_a: int, n_b: int, rng: np.random.Generator,
              n_resamples: int = 1000) -> tuple[float, float]:
    """95% interval of ``acc_a - acc_b`` when each model's ``n`` votes are resampled."""
    diff = rng.binomial(n_a, acc_a, n_resamples) / n_a - rng.binomial(n_b, acc_b, n_resamples) / n_b
    lo, hi = np.percentile(diff, [2.5, 97.5])
    return float(lo), float(hi)


def _mean_std(values: Sequence[float]) -> dict[str, float | None]:
    return {"mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else None}


def paired_by_gamma(rows: Sequence[Mapping[str, Any]], resamples: int = PAIRED_RESAMPLES,
                    seed: int = PAIRED_SEED) -> list[dict[str, Any]]:
    """Per gamma with both models: AD-FactorVAE minus FactorVAE over the seeds both have, with
    each arm's mean and std, the across-seed test (:func:`~vaecam.metrics.paired.
    paired_seed_test`) and its verdict, and per seed the difference with its metric-noise
    interval."""
    rng = np.random.default_rng(seed)
    by_key = {(r["model"], r["gamma"], r["train_seed"]): r for r in rows}
    out = []
    for gamma in dict.fromkeys(r["gamma"] for r in rows):
        seeds = sorted(s for (m, g, s) in by_key if m == AD and g == gamma
                       and (BASE, gamma, s) in by_key)
        if not seeds:
            continue
        ad = [by_key[AD, gamma, s] for s in seeds]
        base = [by_key[BASE, gamma, s] for s in seeds]
        per_seed = []
        for s, a, b in zip(seeds, ad, base, strict=True):
            lo, hi = _votes_ci(a["factorvae"], b["factorvae"],
                               int(a["metric_sizes"]["num_eval"]),
                               int(b["metric_sizes"]["num_eval"]), rng)
            per_seed.append({"seed": s, AD: a["factorvae"], BASE: b["factorvae"],
                             "diff": a["factorvae"] - b["factorvae"], "metric_ci95": [lo, hi]})
        test = paired_seed_test([a["factorvae"] for a in ad], [b["factorvae"] for b in base],
                                resamples=resamples, seed=seed)
        out.append({"gamma": gamma, "seeds": seeds,
                    AD: _mean_std([a["factorvae"] for a in ad]),
                    BASE: _mean_std([b["factorvae"] for b in base]),
                    "test": test.to_dict(), "verdict": test.verdict, "per_seed": per_seed})
    return out


def verdict_cell(test: Mapping[str, Any]) -> str:
    """The verdict, with its reason when undecided (interval across 0, or too few seeds)."""
    if test["verdict"] == "undecided":
        return f"undecided ({test['reason']})"
    return str(test["verdict"])


def p_value_cell(test: Mapping[str, Any]) -> str:
    """``"0.002 (smallest possible 0.002)"``: the Wilcoxon p beside the best that n seeds allow."""
    if test["p_value"] is None:
        return fmt(None)
    return f"{test['p_value']:.3g} (smallest possible {test['min_p']:.3g})"


def _signed(mean: float | None, std: float | None) -> str:
    """A difference as ``"+0.082 ± 0.055"`` (the std left out when there is none)."""
    if mean is None:
        return fmt(None)
    return f"{mean:+.3f}" + ("" if std is None else f" ± {std:.3f}")


def paired_rows(paired: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """One row per gamma: seeds, each arm's mean ± std, the difference with its seed-bootstrap
    interval, the Wilcoxon statistic and p, the verdict (headers: :data:`PAIRED_HEADERS`)."""
    rows = []
    for p in paired:
        test = p["test"]
        ci = test["ci95"] or (None, None)
        rows.append([f"{p['gamma']:g}", test["n"], mean_std(p[AD]["mean"], p[AD]["std"]),
                     mean_std(p[BASE]["mean"], p[BASE]["std"]),
                     _signed(test["mean_diff"], test["std"]), interval(*ci),
                     fmt(None) if test["wilcoxon_statistic"] is None
                     else f"{test['wilcoxon_statistic']:g}", p_value_cell(test),
                     verdict_cell(test)])
    return rows


def per_seed_rows(paired: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """One row per gamma and seed: both scores, the difference and its metric-noise interval
    (headers: :data:`PER_SEED_HEADERS`)."""
    return [[f"{p['gamma']:g}", d["seed"], d[AD], d[BASE], _signed(d["diff"], None),
             interval(*d["metric_ci95"])] for p in paired for d in p["per_seed"]]


def summary_results(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The summary as ``results.json`` holds it: runs, per-model means, the paired test."""
    return {"runs": list(rows), "summary": summarize(rows), "paired": paired_by_gamma(rows),
            "paired_method": PAIRED_NOTE, "references": DSPRITES_FACTORVAE_SCORE}


def write_summary(out: Path, rows: Sequence[Mapping[str, Any]], markdown_name: str, title: str,
                  preamble: str = "") -> dict[str, Any]:
    """Write ``results.json``, ``markdown_name`` (every run, the means, the paired test, the
    published numbers) and ``figure5b.png`` into ``out``, paths in them relative to ``out``;
    returns their paths and tables."""
    out = Path(out)
    portable = PortablePaths.anchored(out)
    out.mkdir(parents=True, exist_ok=True)
    results = summary_results(rows)
    columns = ["model", "gamma", "train_seed", "steps", "factorvae", "mig", "recon_error"]
    runs = str(Table(columns, [[row[c] for c in columns] for row in rows]))
    summary_table = str(Table(
        ["model", "gamma", "runs", "factorvae mean", "factorvae std", "mig mean", "recon mean"],
        [list(s.values()) for s in results["summary"]]))
    paired = results["paired"]
    paired_table = str(Table(PAIRED_HEADERS, paired_rows(paired))) if paired else ""
    references = str(Table(["published", "FactorVAE metric"],
                           list(DSPRITES_FACTORVAE_SCORE.items())))
    figure = disentanglement_scatter(out / "figure5b.png", rows)
    markdown = (
        f"# {title}\n\n" + (f"{preamble}\n\n" if preamble else "")
        + f"## Runs\n\n{runs}\n## Mean over seeds\n\n{summary_table}\n"
        + (f"## AD-FactorVAE against FactorVAE across seeds\n\n{PAIRED_NOTE}\n\n"
           f"{paired_table}\n### Per seed\n\n"
           f"{Table(PER_SEED_HEADERS, per_seed_rows(paired))}\n" if paired else "")
        + f"## Published numbers\n\n{references}\n![Figure 5b](figure5b.png)\n"
    )
    atomic_write_text(out / markdown_name, portable.text(markdown))
    write_json(out / "results.json", portable(results))
    return {"markdown": out / markdown_name, "json": out / "results.json", "figure": figure,
            "table": summary_table, "paired_table": paired_table, "references": references,
            "results": results}
