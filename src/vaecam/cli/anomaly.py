"""``vaecam train|localize ucsd|mvtec`` and ``vaecam data synth mvtec|ucsd``."""

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
from vaecam.data.synthetic import synthesize
from vaecam.data.transforms import AugmentConfig
from vaecam.errors import ConfigError
from vaecam.experiments.localization import RESIZE_MODES, Report
from vaecam.metrics.baseline import ERROR_KINDS


def _print_report(report: Report) -> int:
    print(report.table)
    print(f"results: {report.results}")
    print(f"table: {report.out / 'table.md'}")
    print(f"figures: {', '.join(str(p) for p in report.figures)}")
    return 0


def _train_ucsd(args: argparse.Namespace) -> int:
    from vaecam.experiments.ucsd import train_ucsd

    options = merged(args, "ucsd")
    last = train_ucsd(options, train_config(options))
    print(f"trained the UCSD VAE on {options['data']}; last checkpoint: {last}")
    print(f"logs (CSV, TensorBoard) and train_config.json in {options['out']}")
    return 0


def _train_mvtec(args: argparse.Namespace) -> int:
    from vaecam.experiments.mvtec import train_mvtec

    options = merged(args, "mvtec")
    last = train_mvtec(options, train_config(options))
    print(f"trained the ResNet18-VAE on {options['data']}/{options['category']}; "
          f"last checkpoint: {last}")
    print(f"logs (CSV, TensorBoard) and train_config.json in {options['out']}")
    return 0


def _localize_ucsd(args: argparse.Namespace) -> int:
    from vaecam.experiments.ucsd import localize_ucsd

    return _print_report(localize_ucsd(merged(args, "ucsd")))


def _localize_mvtec(args: argparse.Namespace) -> int:
    from vaecam.experiments.mvtec import localize_mvtec

    return _print_report(localize_mvtec(merged(args, "mvtec")))


_SYNTH_ONLY = {
    "mvtec": ("size", "n_test_good", "n_test_defect"),
    "ucsd": ("frame_size", "n_test_clips", "frames_per_clip"),
}


def _synth(args: argparse.Namespace) -> int:
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
    folder = synthesize(args.kind, args.out, overwrite=args.overwrite, **options)
    print(f"synthetic {args.kind} dataset in {folder}")
    if args.kind == "mvtec":
        print(f"use: --data {args.out} --category {folder.name}")
    else:
        print(f"use: --data {folder}")
    return 0


def _add_localize_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="a .ckpt from 'vaecam train', or a training --out folder "
                        "(its checkpoints/last.ckpt)")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for results.json, table.md and the figures")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    parser.add_argument("--resize", choices=RESIZE_MODES,
                        help="upsample-maps: maps bilinear-upsampled to the image size; "
                        "downscale-masks: maps at the layer's resolution, masks downscaled "
                        "(default upsample-maps)")
    parser.add_argument("--mask-rule", choices=["majority", "any"],
                        help="downscale-masks: a cell is anomalous if at least half of it is "
                        "(majority, default) or if any of its pixels is (any)")
    parser.add_argument("--baseline", choices=ERROR_KINDS,
                        help="reconstruction error of the baseline: abs (default), squared, "
                        "ssim (1 - SSIM)")
    parser.add_argument("--max-images", type=int,
                        help="evaluate only this many evenly spaced test images (quick runs)")
    parser.add_argument("--batch-size", dest="eval_batch_size", type=int,
                        help="test images per batch (memory: method 1 takes one gradient per "
                        "latent dimension)")
    parser.add_argument("--device",
                        help="where maps are computed: auto (GPU if visible, default), cpu, cuda")
    parser.add_argument("--overlays", type=int,
                        help="anomalous test images shown in the overlay figures (default 4)")
    add_attention_options(parser, multi=True)
    add_preset_options(parser)


def register(verbs: argparse._SubParsersAction, groups: dict[str, Any]) -> None:
    _register_train(groups["train"])
    _register_localize(groups["localize"])
    _register_synth(groups["data"])


def _register_train(train: argparse._SubParsersAction) -> None:
    ucsd = train.add_parser(
        "ucsd", help="train the three-conv UCSD VAE on a UCSDped1/UCSDped2 folder",
        description="Train the UCSD VAE of Liu et al. (3 convs, latent 32, BCE + KL) on all "
        "Train/TrainNNN frames, resized to --image-size gray squares.")
    ucsd.add_argument("--data", type=Path, required=True,
                      help="dataset folder such as UCSDped1 or UCSDped2 (holding Train/, Test/)")
    ucsd.add_argument("--image-size", type=int, help="frame side in pixels (paper 100)")
    ucsd.add_argument("--latent-dim", type=int, help="latent size (paper 32)")
    ucsd.add_argument("--channels", type=int, nargs=3, help="conv channels (paper 64 128 256)")
    ucsd.add_argument("--hidden", type=int, help="units of the Linear layer (paper 1024)")
    ucsd.add_argument("--loss", choices=["bce", "mse"],
                      help="reconstruction loss, summed: bce (default, as the authors) or mse")
    add_preset_options(ucsd)
    add_training_options(ucsd)
    ucsd.set_defaults(handler=_train_ucsd)

    mvtec = train.add_parser(
        "mvtec", help="train the ResNet18-VAE on one MVTec-AD category",
        description="Train the ResNet18-VAE of Liu et al. on train/good of one MVTec-AD "
        "category, rotated and flipped on the fly (--num-augmented images per epoch).")
    mvtec.add_argument("--data", type=Path, required=True,
                       help="MVTec-AD root folder that holds the category folders")
    mvtec.add_argument("--category", required=True, help="category folder name, e.g. screw")
    mvtec.add_argument("--image-size", type=int, help="image side, a multiple of 64 (paper 256)")
    mvtec.add_argument("--latent-dim", type=int, help="latent size (default 128; not published)")
    mvtec.add_argument("--hidden", type=int, help="units of the first decoder Linear (1024)")
    mvtec.add_argument("--pretrained", action="store_true",
                       help="start the encoder from ImageNet weights if they are in the torch "
                       "hub cache (never downloaded; results say which was used)")
    g = mvtec.add_argument_group("augmentation")
    g.add_argument("--num-augmented", type=int,
                   help="augmented images per epoch (paper 10000; 0: plain training images)")
    g.add_argument("--padding", choices=["black", "upper-left"],
                   help="fill of the corners uncovered by rotation: black (default) or the "
                   "colour of the image's upper-left pixel")
    g.add_argument("--rotation", type=float,
                   help=f"maximum rotation in degrees (default {AugmentConfig.rotation:g})")
    g.add_argument("--hflip-p", type=float,
                   help=f"probability of a horizontal flip (default {AugmentConfig.hflip_p:g})")
    add_preset_options(mvtec)
    add_training_options(mvtec)
    mvtec.set_defaults(handler=_train_mvtec)


def _register_localize(localize: argparse._SubParsersAction) -> None:
    ucsd = localize.add_parser(
        "ucsd", help="UCSD pixel AUROC per conv layer (reproduction's Figure 4) and more",
        description="Score attention maps of every conv layer x method x activation and the "
        "reconstruction-error baseline on the labelled UCSD test clips, in one streaming pass; "
        "write table.md, results.json, a ROC figure and overlay figures.")
    ucsd.add_argument("--data", type=Path,
                      help="UCSDped1/UCSDped2 folder (default: the one the model was trained on)")
    ucsd.add_argument("--frames", choices=["all", "anomalous-only"],
                      help="score all labelled frames (default) or only frames with anomalies")
    ucsd.add_argument("--clips", nargs="+",
                      help="test clips to use (Test003 or 3); default all clips with masks")
    _add_localize_common(ucsd)
    ucsd.set_defaults(handler=_localize_ucsd)

    mvtec = localize.add_parser(
        "mvtec", help="MVTec-AD pixel AUROC / best IoU (reproduction's Table 2), AUPRO, "
        "image AUROC",
        description="Score attention maps of the chosen ResNet layers x method x activation and "
        "the reconstruction-error baseline on one category's test set, in one streaming pass; "
        "write table.md, results.json, a ROC figure and overlay figures.")
    mvtec.add_argument("--data", type=Path,
                       help="MVTec-AD root (default: the one the model was trained on)")
    mvtec.add_argument("--category", help="category (default: the one the model was trained on)")
    _add_localize_common(mvtec)
    mvtec.set_defaults(handler=_localize_mvtec)


def _register_synth(data: argparse._SubParsersAction) -> None:
    synth = data.add_parser(
        "synth", help="write a small synthetic MVTec-like or UCSD-like dataset",
        description="Write a small generated dataset in the official MVTec-AD or UCSD folder "
        "layout (plainly visible anomalies), deterministic given --seed.")
    synth.add_argument("kind", choices=["mvtec", "ucsd"], help="which layout to generate")
    synth.add_argument("out", type=Path, help="output folder (MVTec root / parent of UCSDpedN)")
    synth.add_argument("--overwrite", action="store_true",
                       help="replace the generated dataset folder if it exists")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--name",
                       help="category (mvtec, default synthetic) or dataset folder name "
                       "(ucsd, default UCSDped1)")
    synth.add_argument("--n-train", type=int,
                       help="training images (mvtec, default 20) or training clips (ucsd, 2)")
    synth.add_argument("--size", type=int, help="mvtec: image side in pixels (default 64)")
    synth.add_argument("--n-test-good", type=int, help="mvtec: good test images (default 5)")
    synth.add_argument("--n-test-defect", type=int,
                       help="mvtec: test images per defect type (default 5)")
    synth.add_argument("--frame-size", type=int, nargs=2, metavar=("W", "H"),
                       help="ucsd: frame width and height (default 120 80)")
    synth.add_argument("--n-test-clips", type=int, help="ucsd: test clips (default 3)")
    synth.add_argument("--frames-per-clip", type=int, help="ucsd: frames per clip (default 12)")
    synth.set_defaults(handler=_synth)
