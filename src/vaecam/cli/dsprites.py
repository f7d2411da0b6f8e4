"""``vaecam train dsprites``, ``vaecam score dsprites`` and ``vaecam sweep dsprites``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vaecam.cli.common import add_preset_options, add_training_options, merged, train_config
from vaecam.experiments import dsprites
from vaecam.losses.ad import AGGREGATIONS
from vaecam.metrics.disentanglement import FACTORVAE_METRIC_PRESETS
from vaecam.models.factorvae import INITS
from vaecam.training.factorvae_module import AD_ACTIVATIONS, VARIANTS

EXPERIMENT = "dsprites"


def _add_data_option(parser: argparse.ArgumentParser, default_help: str) -> None:
    parser.add_argument("--dsprites", metavar="procedural|PATH",
                        help="'procedural': dSprites-like images rendered on the fly (no "
                        f"download); or the path of the official .npz; {default_help}")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model and loss")
    g.add_argument("--model", choices=VARIANTS,
                   help="factorvae (Kim & Mnih 2018) or ad-factorvae (+ attention "
                   "disentanglement loss, Liu et al. 2020)")
    g.add_argument("--gamma", type=float, help="weight of the total-correlation penalty (>= 0)")
    g.add_argument("--lambda", type=float, dest="lambda",
                   help="weight of the AD loss, ad-factorvae only (>= 0)")
    g.add_argument("--latent-dim", type=int, help="latent size (Liu et al.: 32; Kim & Mnih: 10)")
    g.add_argument("--init", choices=INITS,
                   help="weight initialisation; default (PyTorch's) is the one with which the "
                   "reproduction reached the FactorVAE baseline")
    g.add_argument("--d-lr", type=float, help="Adam learning rate of the discriminator")
    g.add_argument("--ad-layer", help="attention layer of the AD loss (default: the last conv, "
                   "encoder.6)")
    g.add_argument("--ad-activation", choices=AD_ACTIVATIONS,
                   help="map activation of the AD loss: relu (paper; better in the reproduction) "
                   "or abs")
    g.add_argument("--ad-pairs", metavar="all|K",
                   help="latent pairs per step: all, or K random distinct pairs")
    g.add_argument("--ad-aggregation", choices=AGGREGATIONS,
                   help="how pair losses combine: mean, or sum (diverged in the reproduction)")
    g.add_argument("--score-every", type=int,
                   help="log the FactorVAE metric (small sizes) every N steps; 0 disables")


def _add_metric_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("scores")
    g.add_argument("--metric-preset", choices=list(FACTORVAE_METRIC_PRESETS),
                   help="FactorVAE metric sizes: reproduction (100 per vote, 800 + 200 votes) or "
                   "disentanglement_lib (64 per vote, 10000 + 5000 votes)")
    g.add_argument("--metric-seed", type=int, help="seed of the metric and recon samples")


def _train(args: argparse.Namespace) -> int:
    options = merged(args, EXPERIMENT)
    checkpoint = dsprites.train(dsprites.DSpritesConfig.from_options(options),
                                train_config(options))
    print(f"last checkpoint: {checkpoint}")
    print(f"logs (CSV, TensorBoard) and train_config.json in {options['out']}")
    print(f"score it with: vaecam score dsprites --checkpoint {checkpoint}")
    return 0


def _run_folder(checkpoint: Path) -> Path:
    """The training run's folder of ``<run>/checkpoints/x.ckpt``, else the file's folder."""
    parent = checkpoint.resolve().parent
    return parent.parent if parent.name == "checkpoints" else parent


def _score(args: argparse.Namespace) -> int:
    options = merged(args, EXPERIMENT)
    out = args.out or _run_folder(args.checkpoint)
    result = dsprites.score(args.checkpoint, dsprites.ScoreConfig.from_options(options), out)
    print(f"{result['model']} gamma {result['gamma']}: FactorVAE metric {result['factorvae']:.3f} "
          f"({result['metric_preset']} sizes), MIG {result['mig']:.3f}, "
          f"reconstruction error {result['recon_error']:.2f}")
    for name, value in result["references"].items():
        print(f"  published: {name}: {value}")
    print(f"scores: {Path(out) / 'score.json'}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    options = merged(args, EXPERIMENT)
    grid = dsprites.SweepConfig(
        gammas=[float(g) for g in options["gammas"]],
        models=list(options["models"]),
        seeds=[int(s) for s in options["seeds"]],
    )
    written = dsprites.sweep(grid, dsprites.DSpritesConfig.from_options(options),
                             dsprites.ScoreConfig.from_options(options), train_config(options),
                             Path(options["out"]))
    print(written["table"])
    print("published numbers:")
    print(written["references"])
    print(f"results: {written['markdown']} and {written['json']}")
    print(f"figure: {written['figure']}")
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
    score.add_argument("--checkpoint", type=Path, required=True,
                       help="a .ckpt written by 'vaecam train dsprites'")
    score.add_argument("--out", type=Path,
                       help="folder for score.json (default: the checkpoint's run folder)")
    _add_data_option(score, "default: the source the model was trained on")
    _add_metric_options(score)
    add_preset_options(score)
    score.set_defaults(handler=_score)

    sweep = groups["sweep"].add_parser(
        "dsprites", help="train and score gamma x model x seed (reproduction Figure 5b)",
        description="Train and score every combination of gammas, models and seeds; write "
        "results.md, results.json and figure5b.png (disentanglement vs reconstruction error).")
    sweep.add_argument("--gammas", type=float, nargs="+", help="TC weights (e.g. 20 40 100)")
    sweep.add_argument("--models", nargs="+", choices=VARIANTS, help="models to train")
    sweep.add_argument("--seeds", type=int, nargs="+", help="training seeds (e.g. 0 1 2)")
    sweep.add_argument("--out", type=Path, required=True,
                       help="output folder; runs go to OUT/runs/<model>_gamma<G>_seed<S>")
    sweep.add_argument("--lambda", type=float, dest="lambda", help="weight of the AD loss")
    sweep.add_argument("--max-steps", type=int, help="training steps per run")
    sweep.add_argument("--batch-size", type=int, help="images per batch")
    sweep.add_argument("--accelerator", help="cpu | gpu | auto (default auto)")
    sweep.add_argument("--overwrite", action="store_true",
                       help="retrain every run (default: reuse scored runs, resume unfinished "
                       "ones)")
    sweep.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _add_data_option(sweep, "default from the preset (procedural)")
    _add_metric_options(sweep)
    add_preset_options(sweep)
    sweep.set_defaults(handler=_sweep)
