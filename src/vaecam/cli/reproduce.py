"""``vaecam reproduce``: the whole reproduction in one resumable command, and its report.

Prints the plan (every stage with its estimate, what is skipped and why), then runs the stages
of :mod:`vaecam.reproduce.plan` with :class:`~vaecam.reproduce.stages.StageRunner` inside the
output folder (claimed for the command ``reproduce``), logs everything to ``reproduce.log`` and
writes ``report.md``, ``report.html`` and ``results.json``. Exit status: 0 when every stage
succeeded, 1 when one failed (the others went on), 2 for a problem the user can fix, 130 when
interrupted (running the same command again continues).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vaecam.cli.common import option
from vaecam.configs import PRESETS
from vaecam.configs.schema import MNIST_ANOMALIES

RESUME_HINT = "run the same command again to continue"
LOG_NAME = "reproduce.log"


def _request(args: argparse.Namespace):  # -> Request
    from vaecam.reproduce.plan import Request, parse_configs, parse_only

    return Request(preset=args.preset, out=args.out, data=args.data, only=parse_only(args.only),
                   seeds=args.seeds, maps=args.maps, anomalies=args.anomalies,
                   accelerator=args.accelerator,
                   devices=args.devices, configs=parse_configs(args.config),
                   force=list(args.force or ()), progress=not args.no_progress)


def rerun_command(request: Any) -> str:
    """The command that produces the same results again (absolute paths, each --config file
    the run's copy of it; without --force, --overwrite, --dry-run and --no-progress, which do
    not change them)."""
    from vaecam.reproduce.plan import config_copy

    out = Path(request.out).expanduser().resolve()
    words: list[Any] = ["vaecam", "reproduce", "--preset", request.preset, "--out", out]
    if request.data is not None:
        words += ["--data", Path(request.data).expanduser().resolve()]
    if request.only:
        words += ["--only", ",".join(request.only)]
    if request.seeds:
        words += ["--seeds", *request.seeds]
    if request.maps:
        words += ["--maps", request.maps]
    if request.anomalies:
        words += ["--anomaly", *request.anomalies]
    if request.accelerator:
        words += ["--accelerator", request.accelerator]
    if request.devices is not None:
        words += ["--devices", request.devices]
    for experiment in request.configs:
        words += ["--config", f"{experiment}={config_copy(out, experiment)}"]
    return shlex.join(str(w) for w in words)


class _PortableFormatter(logging.Formatter):
    """Log lines whose paths read ``$OUT/...`` and ``$DATA/...`` (the log says nothing about
    the machine's folders)."""

    def __init__(self, paths: Any):
        super().__init__("%(asctime)s %(levelname)s %(message)s")
        self.paths = paths

    def format(self, record: logging.LogRecord) -> str:
        return self.paths.text(super().format(record))


@contextlib.contextmanager
def _log_file(path: Path, data: Path | None = None) -> Iterator[logging.Logger]:
    """Every line of the run (and tracebacks of unexpected errors) appended to ``path``, paths
    relative to its folder and to the data root ``data``; the terminal keeps one line per
    event."""
    from vaecam.outputs.portable import PortablePaths

    logger = logging.getLogger("vaecam.reproduce")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(_PortableFormatter(PortablePaths.anchored(path.parent, data)))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(level)
        logger.propagate = propagate


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C (training installs its own graceful handler)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _refuse_other_results(out: Path) -> None:
    """What the claim would refuse, checked without writing (``--dry-run``)."""
    from vaecam.errors import ConfigError
    from vaecam.outputs.folder import read_marker

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; choose a folder")
    marker = read_marker(out)
    if marker is not None and marker["command"] != "reproduce":
        raise ConfigError(f"{out} holds the results of 'vaecam {marker['command']}', not of "
                          "'vaecam reproduce'; choose another --out")


def _say(line: str) -> None:
    print(line, flush=True)


def _reproduce(args: argparse.Namespace) -> int:
    from vaecam.outputs import OutputFolder
    from vaecam.reproduce import report
    from vaecam.reproduce.plan import build_plan, describe, save_configs
    from vaecam.reproduce.stages import StageRunner
    from vaecam.training.options import check_accelerator

    request = _request(args)
    if request.accelerator:
        check_accelerator(request.accelerator)
    plan = build_plan(request)
    if args.dry_run:
        _refuse_other_results(plan.out)
        runner = StageRunner(plan.out, request.force, fresh=bool(args.overwrite),
                             data=plan.discovery.root)
        print("\n".join(describe(plan, runner.plan(plan.stages), commands=True)))
        print("dry run: nothing was written")
        return 0
    inputs = [Path(request.data)] if request.data is not None else []
    overwrite = bool(args.overwrite)
    with OutputFolder(plan.out, "reproduce", inputs, overwrite=overwrite,
                      keep=not overwrite) as folder, \
            _log_file(plan.out / LOG_NAME, plan.discovery.root) as logger, \
            _sigterm_interrupts():
        save_configs(plan, folder)
        command = rerun_command(request)
        logger.info("=== %s", command)
        runner = StageRunner(plan.out, request.force, announce=_say, data=plan.discovery.root)
        for line in describe(plan, runner.plan(plan.stages)):
            _say(line)
            logger.info(line)
        try:
            outcomes = runner.run_all(plan.stages)
        except KeyboardInterrupt:
            logger.info("interrupted; %s", RESUME_HINT)
            raise
        failed = [o for o in outcomes.values() if o.status in ("failed", "blocked")]
        try:
            files = report.write(plan, runner, command)
        except Exception as exc:  # noqa: BLE001 - the stages' results stay; say so in one line
            logger.exception("writing the report failed")
            _say(f"writing the report failed ({type(exc).__name__}: "
                 f"{' '.join(str(exc).split())}); traceback in {plan.out / LOG_NAME}")
            return 1
        lines = [f"report: {files.html}", f"        {files.markdown}",
                 f"results: {files.results}", f"log: {plan.out / LOG_NAME}"]
        if failed:
            lines.append(f"{len(failed)} stage(s) failed or were blocked: "
                         f"{', '.join(o.name for o in failed)}; details in the log; run the "
                         "same command again to retry them (finished stages are skipped)")
        for line in lines:
            _say(line)
            logger.info(line)
    return 1 if failed else 0


def register(verbs: argparse._SubParsersAction, groups: dict[str, Any]) -> None:
    parser = verbs.add_parser(
        "reproduce", help="run every experiment of the paper and its reproduction, resumably, "
        "and write report.md / report.html / results.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Run the experiments of Liu et al. (CVPR 2020) and of its reproduction study
(MNIST, UCSD, MVTec-AD, dSprites) as resumable stages into --out, then write
report.md, report.html and results.json there. The plan (stages, estimated
times, what is skipped and why) is printed first. A stage that finished earlier
with the same configuration is skipped, an interrupted training continues from
its last checkpoint, and a failed stage is reported while the others go on
(exit status 1).""",
        epilog="""\
examples:
  vaecam reproduce --preset smoke --out outputs/smoke
  vaecam reproduce --preset cpu --data ../shared/data --out outputs/cpu --dry-run
  vaecam reproduce --preset paper --data /data --out outputs/paper --accelerator gpu""")
    parser.add_argument("--preset", choices=PRESETS, default="cpu",
                        help="settings of every experiment: smoke (minutes; generates its UCSD "
                        "and MVTec-AD data without --data), cpu (this machine), paper "
                        "(published settings, for a GPU); default cpu")
    option(parser, "--data", metavar="ROOT",
           help="folder holding the datasets: UCSDped1/UCSDped2, MVTec-AD categories, "
           "MNIST/raw, dsprites*.npz (found up to two folders down); without it: bundled MNIST "
           "and procedural dSprites (and generated UCSD/MVTec-AD with --preset smoke)")
    option(parser, "--out", metavar="DIR", required=True,
           help="output folder of the whole reproduction (fixed layout; runs trained by hand "
           "in the same layout are reused)")
    parser.add_argument("--only", metavar="LIST",
                        help="comma-separated experiments to run: mnist,ucsd,mvtec,dsprites "
                        "(default: every one with data)")
    option(parser, "--seeds", metavar="SEED",
           help="training seeds of every experiment (default: each preset's)")
    option(parser, "--maps", help="anomaly maps of every localize stage, as in 'vaecam "
           "localize --maps' (default: the preset's, cheap = all but projection)")
    parser.add_argument("--anomaly", dest="anomalies", nargs="+", choices=MNIST_ANOMALIES,
                        metavar="PROTOCOL",
                        help="MNIST localisation protocols, one table per trained digit each: "
                        "pasted, erased, in-digit (default: the preset's, pasted); e.g. "
                        "--anomaly pasted erased")
    option(parser, "--accelerator", help="where to train (default: each preset's)")
    option(parser, "--devices", help="number of training devices, or 'auto'")
    parser.add_argument("--config", metavar="EXPERIMENT=FILE", action="append",
                        help="a YAML file with 'presets:' for one experiment (as 'vaecam train "
                        "EXPERIMENT --config'); the run keeps a copy, OUT/configs/EXPERIMENT.yaml, "
                        "which its report's commands name; repeatable")
    parser.add_argument("--force", metavar="STAGE", action="append",
                        help="run a stage again even if it is done: a stage name "
                        "(ucsd/UCSDped2/train/seed0), a prefix (ucsd/UCSDped2) or a kind "
                        "(train, localize, score, figures, summary, data); repeatable; a "
                        "forced train stage trains from the start")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan, with each stage's command, and stop (nothing is "
                        "written)")
    option(parser, "--overwrite", help="replace an earlier 'vaecam reproduce' result in --out "
           "(every file vaecam wrote there) instead of continuing it")
    option(parser, "--no-progress", help="hide the progress bars of training and scoring")
    parser.set_defaults(handler=_reproduce, resume_hint=RESUME_HINT)
