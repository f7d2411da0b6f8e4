"""Options shared by several sub-commands, and presets merged with explicit options."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vaecam.attention import ACTIVATIONS, GRAD_NORMS
from vaecam.configs import PRESETS, load_preset
from vaecam.training.trainer import TrainConfig


def add_preset_options(parser: argparse.ArgumentParser, default: str = "cpu") -> None:
    parser.add_argument("--preset", choices=PRESETS, default=default,
                        help="settings bundle: smoke (seconds, for tests), cpu (this machine), "
                        f"paper (published settings, for a GPU); default {default}")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML file with 'presets' to use instead of the packaged one")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Options of every ``vaecam train`` command; None means 'take the preset's value'."""
    g = parser.add_argument_group("training")
    g.add_argument("--out", type=Path, required=True, help="output folder of the run")
    g.add_argument("--max-epochs", type=int, help="stop after this many epochs")
    g.add_argument("--max-steps", type=int, help="stop after this many optimiser steps (-1: none)")
    g.add_argument("--batch-size", type=int, help="images per batch (per device under DDP)")
    g.add_argument("--lr", type=float, help="Adam learning rate")
    g.add_argument("--seed", type=int, help="seed of data order, noise and initialisation")
    g.add_argument("--accelerator", help="cpu | gpu | auto (default auto)")
    g.add_argument("--devices", help="number of devices, or 'auto' (default 1)")
    g.add_argument("--strategy", help="auto | ddp | ddp_spawn | ... (Lightning strategies)")
    g.add_argument("--num-nodes", type=int, help="number of machines for multi-node DDP")
    g.add_argument("--precision", help="32-true | bf16-mixed | 16-mixed (default 32-true)")
    g.add_argument("--num-workers", type=int, help="data loader worker processes (default 0)")
    g.add_argument("--checkpoint-every", type=int,
                   help="write best/last checkpoints every N epochs (and at the end)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    g.add_argument("--overwrite", action="store_true",
                   help="replace a run that already exists in --out")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_attention_options(parser: argparse.ArgumentParser, multi: bool = False) -> None:
    """Attention-map switches; with ``multi`` each option takes several values (a grid)."""
    g = parser.add_argument_group("attention maps")
    nargs = "+" if multi else None
    g.add_argument("--method", nargs=nargs, choices=["1", "2", "normal-difference"],
                   help="1: mean of per-dimension maps (Eq. 3); 2: gradient of sum(mu); "
                   "normal-difference: Eq. 4 against pooled training statistics")
    g.add_argument("--activation", nargs=nargs, choices=list(ACTIVATIONS),
                   help="applied to the weighted channel sum: relu (paper), abs (authors' code)")
    g.add_argument("--layer", nargs=nargs,
                   help="dotted layer name(s), e.g. encoder.2 (default: the model's own)")
    g.add_argument("--grad-norm", choices=GRAD_NORMS,
                   help="method 2: divide gradients by their RMS (rms-batch as the authors' code)")
    g.add_argument("--normalize", action="store_true",
                   help="min-max normalise each map (distorts pixel AUROC across images)")
    g.add_argument("--no-upsample", action="store_true",
                   help="keep maps at the layer's resolution instead of the input's")


def merged(args: argparse.Namespace, experiment: str) -> dict[str, Any]:
    """The preset's options overridden by every option given on the command line."""
    options = load_preset(experiment, args.preset, args.config)
    for key, value in vars(args).items():
        if value is not None and key not in ("handler", "verb", "target"):
            if isinstance(value, bool) and not value and key in options:
                continue  # an absent flag keeps the preset's value
            options[key] = value
    return options


def train_config(options: dict[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from merged options."""
    devices = options.get("devices", 1)
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    return TrainConfig(
        out_dir=Path(options["out"]),
        max_epochs=int(options.get("max_epochs", 1)),
        max_steps=int(options.get("max_steps", -1)),
        batch_size=int(options.get("batch_size", 128)),
        seed=int(options.get("seed", 0)),
        accelerator=str(options.get("accelerator", "auto")),
        devices=devices,
        strategy=str(options.get("strategy", "auto")),
        num_nodes=int(options.get("num_nodes", 1)),
        precision=str(options.get("precision", "32-true")),
        num_workers=int(options.get("num_workers", 0)),
        resume=bool(options.get("resume", False)),
        overwrite=bool(options.get("overwrite", False)),
        progress_bar=not options.get("no_progress", False),
        log_every_n_steps=int(options.get("log_every_n_steps", 10)),
        checkpoint_every_n_epochs=int(options.get("checkpoint_every", 1)),
    )
