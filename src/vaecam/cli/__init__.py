"""The ``vaecam`` command line: thin parsers that call experiments and print where results went.

Verbs: ``demo``, ``train``, ``explain``, ``localize``, ``score``, ``sweep``, ``data``. Each
experiment module in this package adds its own sub-commands under those verbs. Problems the user
can fix end as one ``vaecam: error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from vaecam import __version__
from vaecam.errors import VaecamError

# Experiment modules that register sub-commands (modules not present are skipped).
_COMMAND_MODULES = ("mnist", "anomaly", "dsprites", "data")
GROUPS = {
    "train": "train a model (checkpoints, logs and config go to --out)",
    "localize": "evaluate anomaly localisation of a trained model and write tables and figures",
    "score": "compute disentanglement scores of a trained model",
    "sweep": "train and score a grid of models, then write a results table and figure",
    "data": "generate synthetic datasets or download public ones",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaecam",
        description="Visual explanations (Grad-CAM attention maps) for variational autoencoders, "
        "and the experiments of Liu et al. (CVPR 2020) and its reproduction.",
    )
    parser.add_argument("--version", action="version", version=f"vaecam {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    groups = {}
    for name, help_text in GROUPS.items():
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        groups[name] = sub.add_subparsers(dest="target", metavar="EXPERIMENT", required=True)
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"vaecam.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"vaecam.cli.{module_name}":
                raise
            continue
        module.register(verbs, groups)
    return parser


def _quiet_libraries() -> None:
    """Keep the terminal for vaecam's own output: progress bars, results and errors."""
    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=r".*no `val_dataloader`.*")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("VAECAM_LOG", "WARNING"), format="%(message)s")
    parser = build_parser()
    _quiet_libraries()  # after the imports: Lightning sets its log level when imported
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except VaecamError as exc:
        print(f"vaecam: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vaecam: interrupted; resume training with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
