"""Options shared by several sub-commands, and presets merged with explicit options.

Every option is declared with :func:`option`, which takes its type check from
:data:`vaecam.configs.schema.OPTIONS` (the same checks the YAML presets go through); options
left out on the command line are ``None`` and take the preset's value in :func:`merged`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from vaecam.configs import PRESETS, build_config
from vaecam.configs.schema import OPTIONS, Option, flag, text
from vaecam.configs.sections import ExperimentConfig
from vaecam.errors import ConfigError


def option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *flags: str,
           help: str | Callable[[], str], dest: str | None = None, **kwargs: Any) -> None:
    """Add an option whose value check comes from the schema entry ``dest`` (a help that is a
    function needs ``action=LazyHelp``)."""
    dest = dest or flags[0].lstrip("-").replace("-", "_")
    spec = OPTIONS[dest]
    if spec.check is flag:
        kwargs.setdefault("action", "store_true")
        parser.add_argument(*flags, dest=dest, default=None, help=help, **kwargs)
        return
    choices = getattr(spec.check, "choices", None)
    if choices and "metavar" not in kwargs:
        kwargs["metavar"] = "{" + ",".join(choices) + "}"
    parser.add_argument(*flags, dest=dest, type=spec.argparse_type(dest), nargs=spec.nargs,
                        help=help, **kwargs)


class LazyHelp(argparse.Action):
    """An option stored as given whose help may be a function, called only when the help is
    shown: the ``--maps`` help lists the registered maps, and importing them (and torch) on
    every start of the command line would slow each command down."""

    @property  # type: ignore[override]
    def help(self) -> str | None:
        return self._help() if callable(self._help) else self._help

    @help.setter
    def help(self, value: str | Callable[[], str] | None) -> None:
        self._help = value

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)


def _maps_help() -> str:
    from vaecam.maps.registry import maps_help

    return maps_help()


def warn(message: str) -> None:
    """One ``vaecam: warning: ...`` line on stderr (an option that does nothing, a fallback)."""
    print(f"vaecam: warning: {' '.join(message.split())}", file=sys.stderr)


def warn_unhealthy(out: Path, seeds: Iterable[int]) -> None:
    """After ``vaecam train``: one warning line if a seed's run (``out/seed<S>``) ended with a
    dead encoder layer or a collapsed latent (its ``health.json``)."""
    from vaecam.experiments.seeds import seed_dir
    from vaecam.experiments.training import training_health_warning

    message = training_health_warning({seed: seed_dir(out, seed) for seed in seeds})
    if message:
        warn(message)


def add_preset_options(parser: argparse.ArgumentParser, default: str = "cpu") -> None:
    parser.add_argument("--preset", choices=PRESETS, default=None,
                        help="settings bundle: smoke (seconds, for tests), cpu (this machine), "
                        f"paper (published settings, for a GPU); default {default}")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML file with 'presets:' whose values replace the packaged "
                        "preset's, nested under train:/localize:/score: as in the packaged "
                        "vaecam/configs files (a partial file fills from the packaged preset)")
    parser.set_defaults(default_preset=default)


def add_training_options(parser: argparse.ArgumentParser, seeds: bool = True) -> None:
    """Options of every ``vaecam train`` command; None means 'take the preset's value'."""
    g = parser.add_argument_group("training")
    option(g, "--out", required=True, help="output folder (one run folder per seed inside)")
    option(g, "--max-epochs", help="stop after this many epochs (-1: no limit, with --max-steps)")
    option(g, "--max-steps", help="stop after this many optimiser steps (-1: no limit)")
    option(g, "--batch-size", help="images per batch (per device under DDP)")
    option(g, "--lr", help="Adam learning rate (> 0)")
    if seeds:
        option(g, "--seeds", metavar="SEED",
               help="train one model per seed, each in OUT/seed<S> (preset: smoke 1, cpu 3, "
               "paper 5 seeds)")
        option(g, "--num-seeds", metavar="N",
               help="train N models, seeds 0 to N-1 (instead of --seeds)")
    option(g, "--accelerator", help="where to train (default auto: a GPU if visible)")
    option(g, "--devices", help="number of devices, or 'auto' (default 1)")
    option(g, "--strategy", help="Lightning strategy; ddp for several GPUs or nodes")
    option(g, "--num-nodes", help="number of machines for multi-node DDP")
    option(g, "--precision", help="numeric precision (default 32-true)")
    option(g, "--num-workers", help="data loader worker processes (default 0)")
    option(g, "--checkpoint-every", help="write last.ckpt and best.ckpt every N epochs")
    option(g, "--checkpoint-every-steps",
           help="also write last.ckpt every N optimiser steps (0: off), so an interrupted long "
           "epoch can resume")
    option(g, "--kl-warmup-epochs",
           help="anneal the KL weight from 0 to 1 over this many epochs (0: off; beyond the "
           "papers, against posterior collapse)")
    option(g, "--recon-scale",
           help="multiply the reconstruction term (1: the ELBO; > 1 is a sharper decoder, i.e. "
           "a KL weight 1/scale; beyond the papers, against posterior collapse)")
    option(g, "--free-bits",
           help="nats of KL per latent dimension kept free of penalty (0: off; beyond the "
           "papers, against posterior collapse)")
    option(g, "--data-on-device", help="hold the training images on the training device (GPU) "
           "as uint8 and cut batches by index: no per-item work (refused if they do not fit)")
    option(g, "--channels-last", help="channels_last memory format for the conv models (GPU)")
    option(g, "--compile", help="torch.compile the model (off by default; refused where "
           "unavailable)")
    option(g, "--track-localization",
           help="score the baseline and the attention grid on a fixed labelled subset every "
           "--track-every epochs; log them and draw localization_vs_epoch.png")
    option(g, "--track-every", help="epochs between localisation scores (default 1)")
    option(g, "--track-images", help="images in the tracked subset (default 64)")
    option(g, "--resume", help="continue the runs in --out from their last checkpoints "
           "(options that change a run are refused)")
    option(g, "--overwrite", help="replace earlier results of this command in --out (only "
           "files vaecam wrote there)")
    option(g, "--no-progress", help="hide progress bars")
    option(g, "--yes", help="start even when the estimated training time is far beyond the "
           "preset's (over a few hours)")


def add_attention_options(parser: argparse.ArgumentParser, multi: bool = False) -> None:
    """Attention-map switches; with ``multi`` each option takes several values (a grid)."""
    g = parser.add_argument_group("attention maps")
    method_help = ("1: mean of per-dimension maps (Eq. 3); 2: gradient of sum(mu); "
                   "normal-difference: Eq. 4 against pooled training statistics")
    act_help = "applied to the weighted channel sum: relu (paper), abs (authors' code)"
    layer_help = "dotted layer name(s), e.g. encoder.2 (default: the model's own)"
    if multi:
        option(g, "--method", help=method_help)
        option(g, "--activation", help=act_help)
        option(g, "--layer", help=layer_help)
    else:
        g.add_argument("--method", choices=OPTIONS["method"].check.choices,  # type: ignore[attr-defined]
                       help=method_help)
        g.add_argument("--activation", choices=OPTIONS["activation"].check.choices,  # type: ignore[attr-defined]
                       help=act_help)
        g.add_argument("--layer", type=Option(text).argparse_type("layer"), help=layer_help)
    option(g, "--grad-norm",
           help="method 2: divide gradients by their RMS (rms-batch as the authors' code)")
    option(g, "--activation-order",
           help="apply the activation before upsampling (default) or after it, as the authors' "
           "code does for its method-2 maps")
    option(g, "--normalize", help="min-max normalise each map (distorts pixel AUROC across images)")
    option(g, "--no-upsample", help="keep maps at the layer's resolution instead of the input's")


def add_localize_options(parser: argparse.ArgumentParser) -> None:
    """Options of every ``vaecam localize`` command."""
    option(parser, "--checkpoint", required=True,
           help="a .ckpt from 'vaecam train', a run folder (its last checkpoint), or a "
           "multi-seed training --out folder (every seed<S> run is evaluated and aggregated)")
    option(parser, "--out", required=True,
           help="folder for results.json, table.md and the figures")
    option(parser, "--overwrite", help="replace an earlier result of this command in --out")
    option(parser, "--seeds", metavar="SEED",
           help="with a multi-seed --checkpoint folder: evaluate only these seeds")
    option(parser, "--resize",
           help="upsample-maps (default): maps bilinear-upsampled to the image size; "
           "downscale-masks: maps at the layer's resolution, masks downscaled")
    option(parser, "--mask-rule",
           help="downscale-masks: a cell is anomalous if at least half of it is "
           "(majority, default) or if any of its pixels is (any)")
    option(parser, "--max-images",
           help="evaluate only this many evenly spaced test images (quick runs)")
    option(parser, "--batch-size", dest="eval_batch_size",
           help="test images per batch (memory: method 1 takes one gradient per latent "
           "dimension)")
    option(parser, "--device",
           help="where maps are computed: auto (GPU if visible, default), cpu, cuda, cuda:N")
    option(parser, "--overlays",
           help="anomalous test images shown in the overlay figures (default 4)")
    option(parser, "--no-progress", help="hide the progress bar")
    g = parser.add_argument_group("anomaly maps and evidence")
    option(g, "--maps", help=_maps_help, action=LazyHelp)
    option(g, "--smooth-sigma", help="gaussian smoothing (pixels) of grad-* and combi maps "
           "(0: none; default: each map's own)")
    option(g, "--projection-steps", help="projection: gradient steps T on the input (>= 0)")
    option(g, "--projection-step-size", help="projection: step size (> 0)")
    option(g, "--projection-distance-weight",
           help="projection: weight of the L1 distance to the original image (>= 0)")
    option(g, "--tune", help="choose each map's options (smoothing, projection steps, the "
           "attention setting) on CutPaste anomalies made from training images, never on test "
           "masks (cpu and paper presets: on)")
    option(g, "--no-tune", dest="tune", action="store_false",
           help="score the default options and show each family's best test setting")
    option(g, "--tune-images", help="synthetic anomalies made for tuning (default 64)")
    option(g, "--resamples", help="bootstrap resamples of the test images for the 95%% "
           "intervals and verdicts (>= 100; default 1000)")
    add_attention_options(parser, multi=True)
    add_preset_options(parser)


def print_localization(results: dict[str, Any]) -> int:
    """Print a localisation run's method table, any latent-collapse warning, and its files."""
    from vaecam.report.localization import collapse_warning, method_table

    print(method_table(results))
    warning = collapse_warning(results)
    if warning:
        warn(warning.removeprefix("WARNING: "))
    out = Path(results["out"])
    print(f"results: {out / 'results.json'}")
    print(f"tables: {out / 'table.md'}")
    print(f"figures: {', '.join(results['figures'])}")
    return 0


def experiment_config(args: argparse.Namespace, experiment: str) -> ExperimentConfig:
    """The preset's options overridden by every option given on the command line, by section.

    A command run without ``--preset`` says which preset it uses and what that costs.
    """
    name = args.preset or args.default_preset
    config = build_config(experiment, name, args.config)
    if args.preset is None:
        print(f"vaecam: using preset '{name}' ({config.about}); choose with --preset "
              f"{'|'.join(PRESETS)}", file=sys.stderr)
    given = {key: value for key, value in vars(args).items() if value is not None}
    if "num_seeds" in given:
        if "seeds" in given:
            raise ConfigError("give either --seeds (seed numbers) or --num-seeds (how many, "
                              "seeds 0..N-1), not both")
        given["seeds"] = list(range(given.pop("num_seeds")))
    return config.with_overrides({key: value for key, value in given.items() if key not in (
        "handler", "verb", "target", "preset", "config", "default_preset", "resume_hint")})


def merged(args: argparse.Namespace, experiment: str) -> dict[str, Any]:
    """:func:`experiment_config` as the flat options mapping the experiments take."""
    return experiment_config(args, experiment).as_options()


def localize_options(args: argparse.Namespace, experiment: str) -> dict[str, Any]:
    """:func:`merged` for ``vaecam localize``, except ``seeds``: a preset's training seeds do
    not limit which trained runs are evaluated; only ``--seeds`` does (default: every
    ``seed<S>`` run found under ``--checkpoint``)."""
    options = merged(args, experiment)
    options["seeds"] = args.seeds
    return options


# Training estimated beyond both of these needs --yes: a few hours, and twice the preset's own.
LONG_TRAINING_S = 3 * 3600
SHOWN_ESTIMATE_S = 600


def check_training_cost(options: dict[str, Any], experiment: str) -> None:
    """Print the estimated training time before long work (over ten minutes); refuse, unless
    ``--yes``, training estimated over a few hours and far beyond the preset's own cost."""
    from vaecam.configs import training_estimate
    from vaecam.report.document import format_duration

    estimate = training_estimate(experiment, options)
    if estimate.seconds < SHOWN_ESTIMATE_S:
        return
    preset = options["preset"]
    what = (f"about {format_duration(estimate.seconds)} ({estimate.seeds} seed(s) x "
            f"{format_duration(estimate.per_seed)}, from the '{preset}' preset's measured cost "
            f"on the machine it is made for)")
    if estimate.seconds > max(LONG_TRAINING_S, 2 * estimate.preset_seconds) and \
            not options.get("yes"):
        raise ConfigError(f"this training would take {what}, far beyond the preset's "
                          f"{format_duration(estimate.preset_seconds)}; pass --yes to start it "
                          "anyway, or train fewer seeds or epochs")
    print(f"vaecam: estimated training time {what}", file=sys.stderr)
