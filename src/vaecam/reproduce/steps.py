"""What the stages of ``vaecam reproduce`` run: the same experiment functions as the single
commands, with the options a stage resolved, each returning the JSON-able record the stage
runner keeps (``outputs`` lists the files whose presence makes a finished stage current).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("vaecam.reproduce")


def global_step(checkpoint: Path) -> int:
    from vaecam.training.checkpoints import read_checkpoint

    return int(read_checkpoint(checkpoint).get("global_step", 0))


def train_seed(run_dir: Path, experiment: str, options: dict[str, Any],
               train_one: Callable[[dict[str, Any], Any], Path], retrain: bool = False
               ) -> dict[str, Any]:
    """Train one seed (``options["seeds"] == [seed]``) in ``run_dir``.

    A run folder with a last checkpoint is resumed (an interrupted run continues, a finished
    one returns at once); when its stored identity differs from ``options`` (or with
    ``retrain``), the seed is trained again from the start, replacing vaecam's files there.
    """
    from vaecam.training.options import train_config
    from vaecam.training.run_folder import RunMismatch, last_checkpoint

    last = last_checkpoint(run_dir)
    resume = last.is_file() and not retrain
    start = global_step(last) if resume else 0
    cfg = train_config({**options, "out": run_dir}, experiment)
    holds_files = run_dir.is_dir() and any(run_dir.iterdir())
    cfg = dataclasses.replace(cfg, resume=resume, overwrite=not resume and holds_files)
    try:
        train_one(options, cfg)
    except RunMismatch as exc:
        message = f"{run_dir}: {' '.join(str(exc).split())}; training this seed again"
        print(message, flush=True)
        logger.info(message)
        start = 0
        train_one(options, dataclasses.replace(cfg, resume=False, overwrite=True))
    return {"run": str(run_dir), "checkpoint": str(last), "global_step": global_step(last),
            "resumed_from_step": start, "outputs": [str(last)]}


def mnist_data(options: Mapping[str, Any]) -> Any:
    from vaecam.experiments.mnist import MNISTData

    return MNISTData.from_options(options)


def train_mnist(options: dict[str, Any], cfg: Any) -> Path:
    from vaecam.experiments.mnist import train_mnist

    return train_mnist(options, cfg)


def train_ucsd(options: dict[str, Any], cfg: Any) -> Path:
    from vaecam.experiments.ucsd import train_ucsd

    return train_ucsd(options, cfg)


def train_mvtec(options: dict[str, Any], cfg: Any) -> Path:
    from vaecam.experiments.mvtec import train_mvtec

    return train_mvtec(options, cfg)


def train_dsprites(options: dict[str, Any], cfg: Any) -> Path:
    from vaecam.experiments import dsprites

    return dsprites.train(dsprites.DSpritesConfig.from_options(options), cfg)


def localized(results: Mapping[str, Any]) -> dict[str, Any]:
    """A localize stage's record: where its results are, and each map family's best setting."""
    from vaecam.report.localization import best_per_family

    out = Path(results["out"])
    files = [out / "results.json", out / "table.md", *map(Path, results["figures"])]
    best = {s["family"]: {"setting": s["name"],
                          "pixel_auroc": s["metrics"]["pixel_auroc"].get("mean")}
            for s in best_per_family(results)}
    return {"results": str(out / "results.json"), "best": best,
            "collapsed_seeds": results.get("collapsed_seeds", []),
            "outputs": [str(f) for f in files]}


def localize_mnist(options: dict[str, Any]) -> dict[str, Any]:
    from vaecam.experiments.anomaly import localize
    from vaecam.experiments.mnist import MNIST

    return localized(localize(MNIST, {**options, "overwrite": True}))


def localize_ucsd(options: dict[str, Any]) -> dict[str, Any]:
    from vaecam.experiments.anomaly import localize
    from vaecam.experiments.ucsd import UCSD

    return localized(localize(UCSD, options))


def localize_mvtec(options: dict[str, Any]) -> dict[str, Any]:
    from vaecam.experiments.anomaly import localize
    from vaecam.experiments.mvtec import MVTEC

    return localized(localize(MVTEC, options))


def mnist_figures(out: Path, runs: Mapping[int, Path], options: Mapping[str, Any], seed: int
                   ) -> dict[str, Any]:
    """Figures 1 and 2 of the reproduction from the first seed's models of digits 1 and 3."""
    from vaecam.experiments import mnist
    from vaecam.training.checkpoints import load_model
    from vaecam.training.run_folder import last_checkpoint

    models = {d: load_model(last_checkpoint(run), expected=mnist.MODEL)[0]
              for d, run in runs.items()}
    fig1, fig2 = mnist.demo_figures(models, mnist_data(options).load(), out, seed)
    layer = models[1].default_layer
    return {"figure1": str(fig1), "figure2": str(fig2), "layer": layer,
            "outputs": [str(fig1), str(fig2)]}


def synthesize(kind: str, root: Path, options: Mapping[str, Any]) -> dict[str, Any]:
    from vaecam.data.synthetic import synthesize

    folder = synthesize(kind, root, overwrite=True, **options)
    return {"folder": str(folder), "outputs": [str(folder)]}


def score_dsprites(run_dir: Path, options: Mapping[str, Any]) -> dict[str, Any]:
    """``vaecam score dsprites`` of the run's last checkpoint; score.json goes into the run."""
    from vaecam.experiments import dsprites
    from vaecam.training.run_folder import last_checkpoint

    result = dsprites.score(last_checkpoint(run_dir), dsprites.ScoreConfig.from_options(options),
                            run_dir, progress=not options.get("no_progress"))
    return {"score": str(run_dir / "score.json"), "factorvae": result["factorvae"],
            "mig": result["mig"], "recon_error": result["recon_error"], "steps": result["steps"],
            "outputs": [str(run_dir / "score.json")]}


def dsprites_summary(out: Path, runs: Sequence[Path]) -> dict[str, Any]:
    """Mean scores per (model, gamma), AD-FactorVAE vs FactorVAE across seeds (paired seed
    bootstrap and Wilcoxon), Figure 5b: ``table.md``, ``results.json``, ``figure5b.png``."""
    from vaecam.experiments import dsprites

    rows = [dsprites.read_score(run) for run in runs]
    written = dsprites.write_summary(out, rows, "table.md", "dSprites summary")
    files = [written["json"], written["markdown"], written["figure"]]
    return {"results": str(written["json"]), "figure": str(written["figure"]),
            "paired": [{"gamma": p["gamma"], "seeds": len(p["seeds"]), "verdict": p["verdict"],
                        "mean_diff": p["test"]["mean_diff"], "ci95": p["test"]["ci95"],
                        "p_value": p["test"]["p_value"]}
                       for p in written["results"]["paired"]],
            "outputs": [str(f) for f in files]}


# --- the printed plan ---------------------------------------------------------------------


