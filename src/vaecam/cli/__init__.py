"""The ``vaecam`` command line: thin parsers that call experiments and print where results went.

Verbs: ``demo``, ``train``, ``explain``, ``localize``, ``score``, ``sweep``, ``reproduce``,
``data``. Each module of this package adds its sub-commands under those verbs; they import the
experiments (and PyTorch) only when a command runs, so ``--help`` and ``--version`` stay fast.

One error contract: every problem the user can fix (a bad option or config value, missing data,
an output folder that is not vaecam's, a full disk, too little memory, a file that is not text)
ends as one line ``vaecam: error: ...`` on stderr and exit status 2; an interrupted run prints
one line saying how to continue and exits with 130. Warnings, vaecam's own and those logged by
its modules, are one line each: ``vaecam: warning: ...``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from vaecam import __version__

# Modules that register sub-commands.
_COMMAND_MODULES = ("mnist", "anomaly", "dsprites", "data", "reproduce")
GROUPS = {
    "train": "train a model (checkpoints, logs and config go to --out)",
    "localize": "evaluate anomaly localisation of a trained model and write tables and figures",
    "score": "compute disentanglement scores of a trained model",
    "sweep": "train and score a grid of models, then write a results table and figure",
    "data": "generate synthetic datasets or download public ones",
}


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``vaecam: error: ...``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("vaecam").strip()
        hint = f"; see 'vaecam {command + ' ' if command else ''}--help'"
        print(f"vaecam: error: {' '.join(message.split())}{hint}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="vaecam",
        description="Visual explanations (Grad-CAM attention maps) for variational autoencoders, "
        "and the experiments of Liu et al. (CVPR 2020) and its reproduction.",
    )
    parser.add_argument("--version", action="version", version=f"vaecam {__version__}",
                        help="print the version and exit")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    groups = {}
    for name, help_text in GROUPS.items():
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        groups[name] = sub.add_subparsers(dest="target", metavar="EXPERIMENT", required=True)
    for module_name in _COMMAND_MODULES:
        importlib.import_module(f"vaecam.cli.{module_name}").register(verbs, groups)
    return parser


def _quiet_libraries() -> None:
    """Keep the terminal for vaecam's own output: progress bars, results and errors."""
    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=r".*no `val_dataloader`.*")
    warnings.filterwarnings("ignore", message=r".*litlogger.*")


class _OneLine(logging.Formatter):
    """Log records as the terminal shows vaecam's own lines: ``vaecam: warning: ...``."""

    def format(self, record: logging.LogRecord) -> str:
        text = " ".join(super().format(record).split())
        if record.levelno >= logging.WARNING:
            return f"vaecam: {record.levelname.lower()}: {text}"
        return text


class _Terminal(logging.StreamHandler):
    """Writes each record to the ``sys.stderr`` of the moment, one line."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_OneLine("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _not_vaecam(record: logging.LogRecord) -> bool:
    return not record.name.startswith("vaecam")


def _setup_logging() -> None:
    """vaecam's own log records (and other libraries' warnings) as one line each on stderr.

    vaecam's loggers get their own handler, installed once, so their records also reach any
    handler already on the root logger (a test's log capture) without being shown twice.
    """
    level = os.environ.get("VAECAM_LOG", "WARNING")
    logging.basicConfig(level=level, handlers=[_Terminal()])
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _Terminal):
            handler.addFilter(_not_vaecam)
    ours = logging.getLogger("vaecam")
    if not any(isinstance(handler, _Terminal) for handler in ours.handlers):
        handler = _Terminal()
        handler.setLevel(level)
        ours.addHandler(handler)


_ALLOCATION = re.compile(r"tried to allocate (\d+) bytes|Tried to allocate ([\d.]+ [KMGTP]iB)")


def _out_of_memory(exc: BaseException) -> str | None:
    """One line for an allocation that failed (host or GPU memory), or None for other errors."""
    text = str(exc)
    if not isinstance(exc, MemoryError) and not re.search(
            r"can't allocate memory|out of memory|Cannot allocate memory", text):
        return None
    match = _ALLOCATION.search(text)
    size = ""
    if match:
        size = (f" (it asked for {int(match.group(1)) / 2**30:,.1f} GiB)" if match.group(1)
                else f" (it asked for {match.group(2)})")
    return (f"not enough memory for this model and batch{size}; use a smaller --latent-dim, "
            "--hidden, --image-size or --batch-size")


def _unicode_line(exc: UnicodeError) -> str:
    """One line for text that is not UTF-8 (a file's content, a path)."""
    if isinstance(exc, UnicodeDecodeError):
        return ("a file vaecam read is not UTF-8 text (byte "
                f"{exc.object[exc.start:exc.start + 1]!r} at position {exc.start}); save it as "
                "UTF-8 or pass another file")
    return ("a path or name is not valid UTF-8 text; rename it (or choose another) with UTF-8 "
            "characters only")


def _error(line: str) -> int:
    print(f"vaecam: error: {' '.join(line.split())}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:  # answered before any parser (and PyTorch) is built
        print(f"vaecam {__version__}")
        return 0
    _setup_logging()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad option (2, already printed)
        return int(exc.code or 0)
    from vaecam.errors import VaecamError
    from vaecam.outputs.atomic import os_error_line

    try:
        _quiet_libraries()
        import lightning  # noqa: F401  (imported now so that the filters above apply to it)

        _quiet_libraries()  # Lightning sets its log level when imported
        return int(args.handler(args) or 0)
    except VaecamError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        hint = getattr(args, "resume_hint", "continue with the same command and --resume")
        print(f"vaecam: interrupted; {hint}", file=sys.stderr)
        return 130
    # The failures below can happen anywhere (a full disk while writing a figure, a model too
    # large for memory); output folders have released their locks by the time they arrive here.
    except OSError as exc:
        return _error(os_error_line(exc))
    except UnicodeError as exc:
        return _error(_unicode_line(exc))
    except (MemoryError, RuntimeError) as exc:
        line = _out_of_memory(exc)
        if line is None:
            raise
        return _error(line)


if __name__ == "__main__":
    sys.exit(main())
