"""``vaecam train|score|sweep dsprites`` and ``vaecam data traversal`` (the dSprites figure)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vaecam.cli.common import (
    add_preset_options,
    add_training_options,
    check_training_cost,
    merged,
    option,
    warn,
)
from vaecam.errors import ConfigError
from vaecam.training.options import train_config

EXPERIMENT = "dsprites"
# Fixed factors of the documentation's traversal figure: a large upright heart in the middle.
TRAVERSAL_REFERENCE = (0, 2, 5, 0, 16, 16)


def _add_data_option(parser: argparse.ArgumentParser, default_help: str) -> None:
    option(parser, "--dsprites", metavar="procedural|PATH",
           help="'procedural': dSprites-like images rendered on the fly (no download); or the "
           f"path of the official .npz; {default_help}")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model and loss")
    option(g, "--model", help="factorvae (Kim & Mnih 2018) or ad-factorvae (+ attention "
           "disentanglement loss, Liu et al. 2020)")
    option(g, "--gamma", help="weight of the total-correlation penalty (>= 0)")
    option(g, "--lambda", dest="lambda", help="weight of the AD loss, ad-factorvae only (>= 0)")
    option(g, "--latent-dim", help="latent size (Liu et al.: 32; Kim & Mnih: 10)")
    option(g, "--init", help="weight initialisation; default (PyTorch's) is the one with which "
           "the reproduction reached the FactorVAE baseline")
    option(g, "--d-lr", help="Adam learning rate of the discriminator")
    option(g, "--ad-layer", help="attention layer of the AD loss (default: the last conv, "
           "encoder.6)")
    option(g, "--ad-activation", help="map activation of the AD loss: relu (paper; better in "
           "the reproduction) or abs")
    option(g, "--ad-pairs", metavar="all|K", help="latent pairs per step: all, or K random "
           "distinct pairs")
    option(g, "--ad-aggregation", help="how pair losses combine: mean, or sum (diverged in the "
           "reproduction)")
    option(g, "--score-every", help="log the FactorVAE metric (small sizes) every N steps; "
           "0 disables")


def _add_metric_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("scores")
    option(g, "--metric-preset", help="FactorVAE metric sizes: reproduction (100 per vote, "
           "800 + 200 votes) or disentanglement_lib (64 per vote, 10000 + 5000 votes)")
    option(g, "--metric-seed", help="seed of the metric and recon samples")


_AD_OPTIONS = ("lambda", "ad_layer", "ad_activation", "ad_pairs", "ad_aggregation")


def _warn_unused(args: argparse.Namespace, models: list[str]) -> None:
    """AD options typed for FactorVAE alone do nothing: say so, never drop them silently."""
    if "ad-factorvae" in models:
        return
    for name in _AD_OPTIONS:
        if getattr(args, name, None) is not None:
            warn(f"--{name.replace('_', '-')} only applies to ad-factorvae; ignored for "
                 "factorvae")


def _train(args: argparse.Namespace) -> int:
    from vaecam.experiments import dsprites
    from vaecam.experiments.seeds import check_seeds, train_each_seed

    options = merged(args, EXPERIMENT)
    _warn_unused(args, [options["model"]])
    if options.get("track_localization"):
        raise ConfigError("--track-localization scores anomaly maps: it applies to 'vaecam train "
                          "mnist|ucsd|mvtec', not to dSprites")
    config = dsprites.DSpritesConfig.from_options(options)
    check_training_cost(options, EXPERIMENT)
    inputs = [] if config.dsprites == "procedural" else [Path(config.dsprites)]
    print(dsprites.cost_line(options["preset"], [config.model], [config.gamma],
                             check_seeds(options["seeds"]), scored=False), flush=True)
    last = train_each_seed(lambda run: dsprites.train(config, run),
                           train_config(options, EXPERIMENT), options["seeds"], inputs)
    for seed, checkpoint in last.items():
        print(f"seed {seed}: last checkpoint {checkpoint}")
        print(f"  score it with: vaecam score dsprites --checkpoint {checkpoint}")
    print(f"logs (CSV, TensorBoard) and train_config.json in each run folder of {options['out']}")
    return 0


def _run_folder(checkpoint: Path) -> Path:
    """The training run's folder of ``<run>/checkpoints/x.ckpt``, else the file's folder."""
    parent = checkpoint.resolve().parent
    return parent.parent if parent.name == "checkpoints" else parent


def _score(args: argparse.Namespace) -> int:
    from vaecam.experiments import dsprites
    from vaecam.experiments.seeds import single_checkpoint

    options = merged(args, EXPERIMENT)
    checkpoint = single_checkpoint(args.checkpoint)
    out = args.out or _run_folder(checkpoint)
    result = dsprites.score(checkpoint, dsprites.ScoreConfig.from_options(options), out,
                            progress=not options.get("no_progress"))
    print(f"{result['model']} gamma {result['gamma']}: FactorVAE metric {result['factorvae']:.3f} "
          f"({result['metric_preset']} sizes), MIG {result['mig']:.3f}, "
          f"reconstruction error {result['recon_error']:.2f}")
    for name, value in result["references"].items():
        print(f"  published: {name}: {value}")
    print(f"scores: {Path(out) / 'score.json'}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from vaecam.experiments import dsprites

    options = merged(args, EXPERIMENT)
    _warn_unused(args, list(options["models"]))
    grid = dsprites.SweepConfig(
        gammas=[float(g) for g in options["gammas"]],
        models=list(options["models"]),
        seeds=[int(s) for s in options["seeds"]],
    )
    config = dsprites.DSpritesConfig.from_options(options)
    score_config = dsprites.ScoreConfig.from_options(options)
    run = train_config(options, EXPERIMENT)
    out = Path(options["out"])
    finished = 0 if run.overwrite else sum(
        (dsprites.run_dir(out, m, g, s) / "score.json").is_file()
        for m in grid.models for g in grid.gammas for s in grid.seeds)
    print(dsprites.cost_line(options["preset"], grid.models, grid.gammas, grid.seeds,
                             finished=finished), flush=True)
    written = dsprites.sweep(grid, config, score_config, run, out,
                             progress=not options.get("no_progress"))
    print(written["table"])
    if written["paired_table"]:
        print("AD-FactorVAE against FactorVAE across seeds (paired seed bootstrap, Wilcoxon):")
        print(written["paired_table"])
    print("published numbers:")
    print(written["references"])
    print(f"results: {written['markdown']} and {written['json']}")
    print(f"figure: {written['figure']}")
    return 0


def _traversal(args: argparse.Namespace) -> int:
    from vaecam.data.dsprites import load_dsprites
    from vaecam.viz.traversal import traversal_figure

    data = load_dsprites(args.dsprites or "procedural")
    print(f"dSprites factor traversal: {traversal_figure(data, args.out, TRAVERSAL_REFERENCE)}")
    return 0


def register(verbs: argparse._SubParsersAction, groups: dict[str, Any]) -> None:
    train = groups["train"].add_parser(
        "dsprites", help="train FactorVAE or AD-FactorVAE on dSprites",
        description="Train FactorVAE (Kim & Mnih 2018) or AD-FactorVAE (Liu et al. 2020) on "
        "dSprites: VAE loss + gamma * TC (+ lambda * attention disentanglement loss).")
    _add_model_options(train)
    _add_data_option(train, "default from the preset (procedural)")
    add_preset_options(train)
    add_training_options(train)
    train.set_defaults(handler=_train)

    score = groups["score"].add_parser(
        "dsprites", help="FactorVAE metric, MIG and reconstruction error of a dSprites model",
        description="Score a checkpoint from 'vaecam train dsprites': FactorVAE disentanglement "
        "metric, MIG and reconstruction error on a fixed seeded sample; writes score.json.")
    option(score, "--checkpoint", required=True,
           help="a .ckpt written by 'vaecam train dsprites', or its run folder")
    option(score, "--out", help="folder for score.json (default: the checkpoint's run folder)")
    option(score, "--no-progress", help="hide progress bars")
    _add_data_option(score, "default: the source the model was trained on")
    _add_metric_options(score)
    add_preset_options(score)
    score.set_defaults(handler=_score)

    sweep = groups["sweep"].add_parser(
        "dsprites", help="train and score gamma x model x seed (reproduction Figure 5b)",
        description="Train and score every combination of gammas, models and seeds; write "
        "results.md, results.json and figure5b.png (disentanglement vs reconstruction error).")
    option(sweep, "--gammas", help="TC weights (e.g. 20 40 100)")
    option(sweep, "--models", help="models to train (factorvae ad-factorvae)")
    option(sweep, "--seeds", metavar="SEED", help="training seeds (preset: smoke 1, cpu 10, "
           "paper 5); the across-seed verdict of claim 3 needs at least 6")
    option(sweep, "--out", required=True,
           help="output folder; runs go to OUT/<model>_gamma<G>/seed<S> (the layout of "
           "'vaecam train dsprites --out OUT/<model>_gamma<G>', whose runs are reused)")
    option(sweep, "--lambda", dest="lambda", help="weight of the AD loss")
    option(sweep, "--max-steps", help="training steps per run")
    option(sweep, "--batch-size", help="images per batch")
    option(sweep, "--accelerator", help="where to train (default auto)")
    option(sweep, "--checkpoint-every-steps", help="write last.ckpt every N steps (0: off)")
    option(sweep, "--overwrite", help="retrain every run (default: reuse scored runs, resume "
           "unfinished ones)")
    option(sweep, "--no-progress", help="hide progress bars")
    _add_data_option(sweep, "default from the preset (procedural)")
    _add_metric_options(sweep)
    add_preset_options(sweep)
    sweep.set_defaults(handler=_sweep)

    traversal = groups["data"].add_parser(
        "traversal", help="draw the dSprites factor-traversal figure",
        description="Draw one row per dSprites factor, its values along the row, every other "
        f"factor fixed at {TRAVERSAL_REFERENCE} (a large upright heart in the middle).")
    option(traversal, "--out", required=True, help="PNG file to write")
    _add_data_option(traversal, "default procedural")
    traversal.set_defaults(handler=_traversal)
