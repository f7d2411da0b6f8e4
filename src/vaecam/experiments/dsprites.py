"""The dSprites disentanglement experiment: FactorVAE vs AD-FactorVAE (Liu et al. 2020, Sec. 4.3).

* :func:`train` trains one model (FactorVAE of Kim & Mnih 2018, or AD-FactorVAE with the
  attention disentanglement loss) and returns its last checkpoint.
* :func:`score` computes the FactorVAE metric (with a named size preset), MIG and the
  reconstruction error on a fixed seeded sample, and writes ``score.json``.
* :func:`sweep` trains and scores a grid gamma x model x seed and writes a results table
  (Markdown + JSON) and the scatter plot of the reproduction's Figure 5b, with the published
  numbers beside ours.

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

from vaecam.data.dsprites import GroundTruthData, load_dsprites
from vaecam.errors import ConfigError
from vaecam.metrics.disentanglement import (
    FACTORVAE_METRIC_PRESETS,
    factor_vae_metric,
    mig,
    torch_representation,
)
from vaecam.models.factorvae import FactorVAE
from vaecam.outputs import FolderLock, OutputFolder, adopt
from vaecam.report.references import DSPRITES_FACTORVAE_SCORE
from vaecam.report.tables import markdown_table, write_json
from vaecam.training.checkpoints import load_model, read_checkpoint
from vaecam.training.factorvae_module import DEFAULT_SCORE_SIZES, FactorVAEModule
from vaecam.training.run_folder import identity_differences, read_run_record
from vaecam.training.trainer import TrainConfig, fit, last_checkpoint, run_identity
from vaecam.viz.scatter import disentanglement_scatter

MODEL = "factorvae"


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
        lambda_ad=config.lambda_ad,
        ad_layer=config.ad_layer,
        ad_activation=config.ad_activation,
        ad_pairs=config.ad_pairs,
        ad_aggregation=config.ad_aggregation,
        lr=config.lr,
        d_lr=config.d_lr,
        seed=seed,
        score_every=config.score_every if data is not None else 0,
        score_sizes=config.score_sizes,
        score_data=data,
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
    """FactorVAE metric, MIG and reconstruction error of a checkpoint; writes ``out/score.json``.

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
        adopt(write_json(Path(out) / "score.json", result))
    return result


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
    """Train and score every run of ``grid`` under ``out/runs``; write tables and Figure 5b.

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
                previous = json.loads(scored.read_text())
                if _scored_with(previous, score_config):
                    rows.append(previous)
                    continue
            ckpt = train(run_config, run_cfg)
            rows.append(score(ckpt, score_config, folder, progress=progress))
        columns = ["model", "gamma", "train_seed", "steps", "factorvae", "mig", "recon_error"]
        table = markdown_table(columns, [[row[c] for c in columns] for row in rows])
        summary = summarize(rows)
        summary_table = markdown_table(
            ["model", "gamma", "runs", "factorvae mean", "factorvae std", "mig mean", "recon mean"],
            [list(s.values()) for s in summary],
        )
        paired = paired_verdicts(rows)
        paired_table = markdown_table(
            ["gamma", "seeds", "AD - FactorVAE (mean over seeds)", "per seed: diff [95% CI] "
             "verdict", "verdict"],
            [[p["gamma"], len(p["per_seed"]), p["diff_mean"],
              "; ".join(f"seed {d['seed']}: {d['diff']:+.3f} [{d['diff_ci95'][0]:+.3f}, "
                        f"{d['diff_ci95'][1]:+.3f}] {d['verdict']}" for d in p["per_seed"]),
              p["verdict"]] for p in paired],
        ) if paired else ""
        references = markdown_table(
            ["published", "FactorVAE metric"], list(DSPRITES_FACTORVAE_SCORE.items())
        )
        figure = disentanglement_scatter(out / "figure5b.png", rows)
        markdown = (
            f"# dSprites sweep\n\nMetric preset: {score_config.metric_preset} "
            f"{score_config.factorvae_sizes()}; data: {config.dsprites}.\n\n"
            f"## Runs\n\n{table}\n## Mean over seeds\n\n{summary_table}\n"
            + (f"## AD-FactorVAE against FactorVAE, paired by seed\n\n{PAIRED_NOTE}\n\n"
               f"{paired_table}\n" if paired else "") +
            f"## Published numbers\n\n{references}\n![Figure 5b](figure5b.png)\n"
        )
        (out / "results.md").write_text(markdown)
        results = {"runs": rows, "summary": summary, "paired": paired,
                   "paired_method": PAIRED_NOTE, "references": DSPRITES_FACTORVAE_SCORE}
        write_json(out / "results.json", results)
    return {
        "markdown": out / "results.md",
        "json": out / "results.json",
        "figure": figure,
        "table": summary_table,
        "references": references,
    }


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean (and std) of the scores over seeds, per (model, gamma)."""
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
            "factorvae_std": float(scores.std()),
            "mig_mean": float(np.mean([row["mig"] for row in group])),
            "recon_mean": float(np.mean([row["recon_error"] for row in group])),
        })
    return summary


PAIRED_NOTE = (
    "Per training seed, the difference of the FactorVAE metric (AD-FactorVAE minus FactorVAE, "
    "same seed, same gamma) with a 95% interval from 1,000 bootstrap resamples of each model's "
    "evaluation votes (the metric's own sampling noise; the classifier's training votes are "
    "held fixed); better/worse when the interval excludes 0, and over seeds only when every "
    "seed agrees."
)


def _votes_ci(acc_a: float, acc_b: float, n_a: int, n_b: int, rng: np.random.Generator,
              n_resamples: int = 1000) -> tuple[float, float]:
    """95% interval of ``acc_a - acc_b`` when each model's ``n`` votes are resampled."""
    diff = rng.binomial(n_a, acc_a, n_resamples) / n_a - rng.binomial(n_b, acc_b, n_resamples) / n_b
    lo, hi = np.percentile(diff, [2.5, 97.5])
    return float(lo), float(hi)


def paired_verdicts(rows: Sequence[Mapping[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Per gamma with both models: AD-FactorVAE minus FactorVAE per seed, intervals, verdicts."""
    rng = np.random.default_rng(seed)
    by_key = {(r["model"], r["gamma"], r["train_seed"]): r for r in rows}
    out = []
    for gamma in dict.fromkeys(r["gamma"] for r in rows):
        seeds = sorted(s for (m, g, s) in by_key if m == "ad-factorvae" and g == gamma
                       and ("factorvae", gamma, s) in by_key)
        per_seed = []
        for s in seeds:
            ad, base = by_key["ad-factorvae", gamma, s], by_key["factorvae", gamma, s]
            lo, hi = _votes_ci(ad["factorvae"], base["factorvae"],
                               int(ad["metric_sizes"]["num_eval"]),
                               int(base["metric_sizes"]["num_eval"]), rng)
            verdict = "better" if lo > 0 else "worse" if hi < 0 else "undecided"
            per_seed.append({"seed": s, "diff": ad["factorvae"] - base["factorvae"],
                             "diff_ci95": [lo, hi], "verdict": verdict})
        if per_seed:
            verdicts = [d["verdict"] for d in per_seed]
            agreed = len(set(verdicts)) == 1 and verdicts[0] != "undecided"
            out.append({"gamma": gamma, "per_seed": per_seed,
                        "diff_mean": float(np.mean([d["diff"] for d in per_seed])),
                        "diff_std": float(np.std([d["diff"] for d in per_seed])),
                        "verdict": verdicts[0] if agreed else "undecided"})
    return out
