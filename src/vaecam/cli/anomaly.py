"""``vaecam train|localize ucsd|mvtec|folder`` and ``vaecam data synth mvtec|ucsd``."""

from __future__ import annotations

import argparse
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


def _train_ucsd(args: argparse.Namespace) -> int:
    from vaecam.experiments.ucsd import train_ucsd

    options = merged(args, "ucsd")
    _train_seeds(options, "ucsd", train_ucsd, [options["data"]])
    print(f"trained the UCSD VAE on {options['data']}")
    return 0


def _train_mvtec(args: argparse.Namespace) -> int:
    from vaecam.experiments.mvtec import train_mvtec

    options = merged(args, "mvtec")  # --pretrained without cached weights: the model warns
    _train_seeds(options, "mvtec", train_mvtec, [options["data"]])
    print(f"trained the ResNet18-VAE on {options['data']}/{options['category']}")
    return 0


def _train_folder(args: argparse.Namespace) -> int:
    from vaecam.experiments.folder import train_folder

    options = merged(args, "folder")
    _train_seeds(options, "folder", train_folder, [options["data"]])
    print(f"trained the conv VAE on {options['data']}/train")
    return 0


def _localize_ucsd(args: argparse.Namespace) -> int:
    from vaecam.experiments.ucsd import localize_ucsd

    return print_localization(localize_ucsd(localize_options(args, "ucsd")))


def _localize_mvtec(args: argparse.Namespace) -> int:
    from vaecam.experiments.mvtec import localize_mvtec

    return print_localization(localize_mvtec(localize_options(args, "mvtec")))


def _localize_folder(args: argparse.Namespace) -> int:
    from vaecam.experiments.folder import localize_folder

    return print_localization(localize_folder(localize_options(args, "folder")))


FOLDER_LAYOUT = ("<data>/train/ (normal images), <data>/test/normal/, <data>/test/abnormal/, "
                 "<data>/masks/<stem>.png (a mask per abnormal test image, bright = anomalous)")

_SYNTH_ONLY = {
    "mvtec": ("size", "n_test_good", "n_test_defect"),
    "ucsd": ("frame_size", "n_test_clips", "frames_per_clip"),
}


def _synth(args: argparse.Namespace) -> int:
    from vaecam.data.synthetic import synthesize

    other = "ucsd" if args.kind == "mvtec" else "mvtec"
    wrong = [k for k in _SYNTH_ONLY[other] if getattr(args, k) is not None]
    if wrong:
        flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
        raise ConfigError(f"{flags} only apply to '{other}' datasets; drop them for {args.kind}")
    options: dict[str, Any] = {"seed": args.seed}
    if args.kind == "mvtec":
        names = {"category": args.name, "n_train": args.n_train, "size": args.size,
                 "n_test_good": args.n_test_good, "n_test_defect": args.n_test_defect}
    else:
        size = tuple(args.frame_size) if args.frame_size else None
        names = {"name": args.name, "n_train_clips": args.n_train, "size": size,
                 "n_test_clips": args.n_test_clips, "frames_per_clip": args.frames_per_clip}
    options.update({k: v for k, v in names.items() if v is not None})
    folder = synthesize(args.kind, args.out, overwrite=bool(args.overwrite), **options)
    print(f"synthetic {args.kind} dataset in {folder}")
    if args.kind == "mvtec":
        print(f"use: --data {args.out} --category {folder.name}")
    else:
        print(f"use: --data {folder}")
    return 0


def register(verbs: argparse._SubParsersAction, groups: dict[str, Any]) -> None:
    _register_train(groups["train"])
    _register_localize(groups["localize"])
    _register_synth(groups["data"])


def _register_train(train: argparse._SubParsersAction) -> None:
    ucsd = train.add_parser(
        "ucsd", help="train the three-conv UCSD VAE on a UCSDped1/UCSDped2 folder",
        description="Train the UCSD VAE of Liu et al. (3 convs, latent 32, BCE + KL) on all "
        "Train/TrainNNN frames, resized to --image-size gray squares.")
    option(ucsd, "--data", required=True,
           help="dataset folder such as UCSDped1 or UCSDped2 (holding Train/, Test/)")
    option(ucsd, "--image-size", help="frame side in pixels (paper 100)")
    option(ucsd, "--latent-dim", help="latent size (paper 32)")
    option(ucsd, "--channels", help="three conv channel counts (paper 64 128 256)")
    option(ucsd, "--hidden", help="units of the Linear layer (paper 1024)")
    option(ucsd, "--loss",
           help="reconstruction loss, summed: bce (default, as the authors) or mse; "
           "ignored by the standardized and live recipes (Gaussian with the frames' spread)")
    option(ucsd, "--recipe",
           help="paper (the published model) | standardized (input standardised by the mean "
           "training frame, Gaussian decoder with the frames' spread) | batchnorm (BatchNorm/"
           "LeakyReLU encoder, paper loss) | live (standardized + batchnorm: keeps the encoder "
           "alive on UCSD; docs/ucsd-recipe.md)")
    add_preset_options(ucsd)
    add_training_options(ucsd)
    ucsd.set_defaults(handler=_train_ucsd)

    mvtec = train.add_parser(
        "mvtec", help="train the ResNet18-VAE on one MVTec-AD category",
        description="Train the ResNet18-VAE of Liu et al. on train/good of one MVTec-AD "
        "category, rotated and flipped on the fly (--num-augmented images per epoch).")
    option(mvtec, "--data", required=True,
           help="MVTec-AD root folder that holds the category folders")
    option(mvtec, "--category", required=True, help="category folder name, e.g. screw")
    option(mvtec, "--image-size", help="image side, a multiple of 64 (paper 256)")
    option(mvtec, "--latent-dim", help="latent size (default 128; not published)")
    option(mvtec, "--hidden", help="units of the first decoder Linear (1024)")
    option(mvtec, "--pretrained",
           help="start the encoder from ImageNet weights if they are in the torch hub cache "
           "(never downloaded; a warning says when they are missing)")
    g = mvtec.add_argument_group("augmentation")
    option(g, "--num-augmented",
           help="augmented images per epoch (paper 10000; 0: plain training images)")
    option(g, "--padding", help="fill of the corners uncovered by rotation: black (default) or "
           "the colour of the image's upper-left pixel")
    option(g, "--rotation", help="maximum rotation in degrees, 0-180 (default 30)")
    option(g, "--hflip-p", help="probability of a horizontal flip, 0-1 (default 0.5)")
    add_preset_options(mvtec)
    add_training_options(mvtec)
    mvtec.set_defaults(handler=_train_mvtec)

    folder = train.add_parser(
        "folder", help="train the conv VAE on a folder of your own normal images",
        description="Train the three-conv VAE (as for UCSD, with the images' 1 or 3 channels) on "
        "<data>/train, resized to --image-size squares. Layout: " + FOLDER_LAYOUT)
    option(folder, "--data", required=True, help="image folder holding train/ (and test/, "
           "masks/ for localize)")
    option(folder, "--image-size", help="image side in pixels (cpu preset 64)")
    option(folder, "--latent-dim", help="latent size (cpu preset 32)")
    option(folder, "--channels", help="three conv channel counts (cpu preset 32 64 128)")
    option(folder, "--hidden", help="units of the Linear layer (cpu preset 512)")
    option(folder, "--loss", help="reconstruction loss, summed: bce (default) or mse")
    option(folder, "--recipe", help="model switches as for UCSD: paper | standardized | batchnorm "
           "(the presets': BatchNorm/LeakyReLU encoder) | live (docs/ucsd-recipe.md)")
    add_preset_options(folder)
    add_training_options(folder)
    folder.set_defaults(handler=_train_folder)


def _register_localize(localize: argparse._SubParsersAction) -> None:
    ucsd = localize.add_parser(
        "ucsd", help="UCSD pixel AUROC per conv layer (reproduction's Figure 4) and more",
        description="Score attention maps of every conv layer x method x activation and the "
        "reconstruction-error baseline on the labelled UCSD test clips, in one streaming pass; "
        "write table.md, results.json, a ROC figure and overlay figures.")
    option(ucsd, "--data",
           help="UCSDped1/UCSDped2 folder (default: the one the model was trained on)")
    option(ucsd, "--frames",
           help="score all labelled frames (default) or only frames with anomalies")
    option(ucsd, "--clips", help="test clips to use (Test003 or 3); default all clips with masks")
    add_localize_options(ucsd)
    ucsd.set_defaults(handler=_localize_ucsd)

    mvtec = localize.add_parser(
        "mvtec", help="MVTec-AD pixel AUROC / best IoU (reproduction's Table 2), AUPRO, "
        "image AUROC",
        description="Score attention maps of the chosen ResNet layers x method x activation and "
        "the reconstruction-error baseline on one category's test set, in one streaming pass; "
        "write table.md, results.json, a ROC figure and overlay figures.")
    option(mvtec, "--data", help="MVTec-AD root (default: the one the model was trained on)")
    option(mvtec, "--category", help="category (default: the one the model was trained on)")
    add_localize_options(mvtec)
    mvtec.set_defaults(handler=_localize_mvtec)

    folder = localize.add_parser(
        "folder", help="pixel AUROC, AUPRO and image AUROC on a folder of your own images",
        description="Score attention maps of every conv layer x method x activation, the "
        "reconstruction-error baseline and the trivial references on <data>/test against "
        "<data>/masks; write table.md, results.json, a ROC figure and overlay figures. "
        "Layout: " + FOLDER_LAYOUT)
    option(folder, "--data", help="image folder (default: the one the model was trained on)")
    add_localize_options(folder)
    folder.set_defaults(handler=_localize_folder)


def _register_synth(data: argparse._SubParsersAction) -> None:
    synth = data.add_parser(
        "synth", help="write a small synthetic MVTec-like or UCSD-like dataset",
        description="Write a small generated dataset in the official MVTec-AD or UCSD folder "
        "layout (plainly visible anomalies), deterministic given --seed.")
    synth.add_argument("kind", choices=["mvtec", "ucsd"], help="which layout to generate")
    synth.add_argument("out", type=OPTIONS["out"].argparse_type("out"),
                       help="output folder (MVTec root / parent of UCSDpedN)")
    option(synth, "--overwrite", help="replace the generated dataset folder if vaecam wrote it")
    option(synth, "--seed", default=0, help="random seed (default 0)")
    option(synth, "--name", help="category (mvtec, default synthetic) or dataset folder name "
           "(ucsd, default UCSDped1)")
    option(synth, "--n-train",
           help="training images (mvtec, default 20) or training clips (ucsd, 2)")
    option(synth, "--size", help="mvtec: image side in pixels (default 64)")
    option(synth, "--n-test-good", help="mvtec: good test images (default 5)")
    option(synth, "--n-test-defect", help="mvtec: test images per defect type (default 5)")
    option(synth, "--frame-size", metavar=("W", "H"),
           help="ucsd: frame width and height (default 120 80)")
    option(synth, "--n-test-clips", help="ucsd: test clips (default 3)")
    option(synth, "--frames-per-clip", help="ucsd: frames per clip (default 12)")
    synth.set_defaults(handler=_synth)
