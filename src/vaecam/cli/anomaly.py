"""``vaecam train|localize <dataset>`` for every dataset of the shared localisation pipeline
(their text and options come from the ``command:`` block of the dataset's packaged YAML,
:mod:`vaecam.configs.commands`), and ``vaecam data synth mvtec|ucsd|folder``."""

from __future__ import annotations

import argparse
import functools
import importlib
from collections.abc import Callable
from typing import Any

from vaecam.cli.common import (
    add_localize_options,
    add_preset_options,
    add_training_options,
    check_training_cost,
    localize_options,
    merged,
    option,
    print_localization,
    warn_unhealthy,
)
from vaecam.configs.commands import DatasetCommands, VerbText, dataset_commands
from vaecam.configs.schema import OPTIONS
from vaecam.errors import ConfigError
from vaecam.training.options import train_config


def _train_seeds(options: dict[str, Any], experiment: str, train_one, inputs) -> dict:
    from vaecam.experiments.seeds import train_each_seed

    check_training_cost(options, experiment)
    cfg = train_config(options, experiment)
    last = train_each_seed(lambda run_cfg: train_one(options, run_cfg), cfg, options["seeds"],
                           inputs)
    for seed, path in last.items():
        print(f"  seed {seed}: last checkpoint {path}")
    print(f"logs (CSV, TensorBoard), health.json and train_config.json in each run folder of "
          f"{cfg.out_dir}")
    warn_unhealthy(cfg.out_dir, last)
    return last


def _spec(commands: DatasetCommands) -> Any:
    """The :class:`~vaecam.experiments.anomaly.AnomalyExperiment` the commands name."""
    module, attribute = commands.experiment.split(":")
    return getattr(importlib.import_module(module), attribute)


def _train(commands: DatasetCommands, args: argparse.Namespace) -> int:
    options = merged(args, commands.name)
    _train_seeds(options, commands.name, _spec(commands).train, [options["data"]])
    if commands.train.done:
        print(commands.train.done.format(**options))
    return 0


def _localize(commands: DatasetCommands, args: argparse.Namespace) -> int:
    from vaecam.experiments.anomaly import localize

    return print_localization(localize(_spec(commands), localize_options(args, commands.name)))


# The options of ``vaecam data synth`` each layout takes.
_SYNTH_OPTIONS = {
    "mvtec": ("name", "n_train", "size", "n_test_good", "n_test_defect"),
    "ucsd": ("name", "n_train", "frame_size", "n_test_clips", "frames_per_clip"),
    "folder": ("name", "n_train", "size", "n_test_normal", "n_test_abnormal", "grayscale"),
}
# Their names in the generators, where they differ.
_SYNTH_NAMES = {"mvtec": {"name": "category"}, "ucsd": {"n_train": "n_train_clips"}}


def _synth(args: argparse.Namespace) -> int:
    from vaecam.data.synthetic import synthesize

    given = {k for k in set().union(*_SYNTH_OPTIONS.values())
             if getattr(args, k) not in (None, False)}
    wrong = sorted(given - set(_SYNTH_OPTIONS[args.kind]))
    if wrong:
        flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
        verb = "does" if len(wrong) == 1 else "do"
        raise ConfigError(f"{flags} {verb} not apply to '{args.kind}' datasets; drop "
                          f"{'it' if len(wrong) == 1 else 'them'} (see 'vaecam data synth --help')")
    rename = _SYNTH_NAMES.get(args.kind, {})
    options: dict[str, Any] = {rename.get(k, k): getattr(args, k) for k in given}
    if "frame_size" in options:
        options["size"] = tuple(options.pop("frame_size"))
    folder = synthesize(args.kind, args.out, overwrite=bool(args.overwrite), seed=args.seed,
                        **options)
    print(f"synthetic {args.kind} dataset in {folder}")
    if args.kind == "mvtec":
        print(f"use: --data {args.out} --category {folder.name}")
    else:
        print(f"use: --data {folder}")
    return 0


def register(verbs: argparse._SubParsersAction, groups: dict[str, Any]) -> None:
    for commands in dataset_commands():
        _add_dataset(groups["train"], commands, commands.train, _train, _shared_training)
        _add_dataset(groups["localize"], commands, commands.localize, _localize,
                     add_localize_options)
    _register_synth(groups["data"])


def _shared_training(parser: argparse.ArgumentParser) -> None:
    add_preset_options(parser)
    add_training_options(parser)


def _add_dataset(verb: argparse._SubParsersAction, commands: DatasetCommands, text: VerbText,
                 handler: Callable[[DatasetCommands, argparse.Namespace], int],
                 add_shared: Callable[[argparse.ArgumentParser], None]) -> None:
    """``vaecam <verb> <dataset>``: the dataset's options from its YAML, then the shared ones
    (``add_shared``)."""
    parser = verb.add_parser(commands.name, help=text.help, description=text.description)
    groups: dict[str | None, Any] = {None: parser}
    for item in text.options:
        if item.group not in groups:
            groups[item.group] = parser.add_argument_group(item.group)
        option(groups[item.group], item.flag, help=item.help,
               **({"required": True} if item.required else {}))
    add_shared(parser)
    parser.set_defaults(handler=functools.partial(handler, commands))


def _register_synth(data: argparse._SubParsersAction) -> None:
    synth = data.add_parser(
        "synth", help="write a small synthetic MVTec-like, UCSD-like or own-folder dataset",
        description="Write a small generated dataset in the official MVTec-AD or UCSD folder "
        "layout, or in the own-images layout of 'vaecam train folder' (plainly visible "
        "anomalies), deterministic given --seed.")
    synth.add_argument("kind", choices=list(_SYNTH_OPTIONS), help="which layout to generate")
    synth.add_argument("out", type=OPTIONS["out"].argparse_type("out"),
                       help="output folder (MVTec root / parent of UCSDpedN / parent of the "
                       "image folder)")
    option(synth, "--overwrite", help="replace the generated dataset folder if vaecam wrote it")
    option(synth, "--seed", default=0, help="random seed (default 0)")
    option(synth, "--name", help="category (mvtec, default synthetic) or dataset folder name "
           "(ucsd, default UCSDped1; folder, default images)")
    option(synth, "--n-train",
           help="training images (mvtec 20, folder 16 by default) or training clips (ucsd, 2)")
    option(synth, "--size", help="mvtec, folder: image side in pixels (default 64, 32)")
    option(synth, "--n-test-good", help="mvtec: good test images (default 5)")
    option(synth, "--n-test-defect", help="mvtec: test images per defect type (default 5)")
    option(synth, "--frame-size", metavar=("W", "H"),
           help="ucsd: frame width and height (default 120 80)")
    option(synth, "--n-test-clips", help="ucsd: test clips (default 3)")
    option(synth, "--frames-per-clip", help="ucsd: frames per clip (default 12)")
    option(synth, "--n-test-normal", help="folder: normal test images (default 4)")
    option(synth, "--n-test-abnormal", help="folder: abnormal test images, each with a mask "
           "(default 4)")
    option(synth, "--grayscale", help="folder: one-channel images (default RGB)")
    synth.set_defaults(handler=_synth)
