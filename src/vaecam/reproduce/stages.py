"""Resumable stages: run each once, skip it while its config is unchanged, report failures.

A :class:`Stage` is one unit of a reproduction (train one seed, localise one dataset, score one
run) with a resolved configuration and the stages it depends on. Its *fingerprint* hashes its
configuration and its dependencies' fingerprints, so a changed option re-runs exactly the
stages it reaches. :class:`StageRunner` keeps one record per finished stage
(``.stages/<name>.json``: fingerprint, finish time, wall time, result). A stage is *current*,
and skipped, when its record has the same fingerprint, every output it lists still exists and
no dependency finished after it; a stage runs when it is not current, when ``--force`` names it
(:func:`matches`), or when a stage it needs runs. Its record is removed when it starts, so an
interrupted or failed stage runs again next time. A failed stage is reported and the stages that
do not need it go on; those that need it are *blocked*. Progress is one line per stage with
elapsed time and an ETA from the preset's estimates, scaled by how fast the finished stages ran
compared with their estimates; every line also goes to the ``vaecam.reproduce`` logger.

A record names paths relative to the output folder or the data root (``$OUT/...``,
``$DATA/...``, see :mod:`vaecam.report.portable`), and so does the fingerprint: a finished
stage stays current when the output folder (with the data inside it) is moved. A record written
with absolute paths by an earlier vaecam is still recognised.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaecam.errors import VaecamError
from vaecam.outputs import atomic_write_text
from vaecam.outputs.portable import PortablePaths, resolve_paths
from vaecam.report.document import format_duration
from vaecam.training.run_folder import plain
from vaecam.training.trainer import TrainingInterrupted

logger = logging.getLogger("vaecam.reproduce")
# Weight of the preset's estimates in the ETA, as a fraction of the total estimate: the pace
# measured on the first stages alone (often tiny ones) would swing the ETA wildly.
PACE_PRIOR = 0.2


@dataclass
class Stage:
    """One step: ``run()`` returns a JSON-able result kept in the stage record; a result's
    ``outputs`` (paths) must still exist for the stage to count as done. ``command`` is the
    ``vaecam`` command line that does the same work by hand (empty when there is none)."""

    name: str
    kind: str
    config: Mapping[str, Any]
    run: Callable[[], Mapping[str, Any]]
    estimate: float
    needs: Sequence[str] = ()
    command: str = ""


@dataclass
class Outcome:
    """What became of a stage in this invocation."""

    name: str
    status: str  # "done", "skipped", "failed", "blocked"
    seconds: float = 0.0
    result: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""


def matches(pattern: str, name: str, kind: str) -> bool:
    """Whether a ``--force`` value names the stage ``name`` of ``kind``: its name, a prefix of
    it ending at a ``/`` (``ucsd/UCSDped2``), or its kind (``localize``)."""
    pattern = pattern.rstrip("/")
    return name == pattern or name.startswith(pattern + "/") or kind == pattern


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(plain(data), sort_keys=True, default=str).encode()
                          ).hexdigest()[:16]


def work_share(result: Mapping[str, Any]) -> float:
    """The share of a stage's estimated work it really did: a training that continued a
    checkpoint did only the steps after it (none for a finished run), so that its seconds do
    not make the pace, and with it the ETA of the stages after it, look faster than it is."""
    total, start = result.get("global_step"), result.get("resumed_from_step")
    if not isinstance(total, int) or not isinstance(start, int) or total <= 0:
        return 1.0
    return min(max((total - start) / total, 0.0), 1.0)


class StageRunner:
    """Run stages in order under ``out``; records in ``out/.stages``.

    ``data`` is the data root (paths under it are recorded as ``$DATA/...``); ``fresh``
    ignores every earlier record (the results are being replaced).
    """

    def __init__(self, out: Path, force: Sequence[str] = (),
                 announce: Callable[[str], None] = print, fresh: bool = False,
                 data: Path | None = None):
        self.out = Path(out)
        self.data = data
        self.paths = PortablePaths.anchored(self.out, data)
        self.records = self.out / ".stages"
        self.force = list(force)
        self.announce = announce
        self.fresh = fresh
        self.fingerprints: dict[str, str] = {}
        # the fingerprints of records written with absolute paths (before paths were portable)
        self.absolute_fingerprints: dict[str, str] = {}
        self.outcomes: dict[str, Outcome] = {}

    def _record_path(self, name: str) -> Path:
        return self.records / (name.replace("/", "__") + ".json")

    def _record(self, name: str) -> dict[str, Any] | None:
        if self.fresh:
            return None
        try:
            record = json.loads(self._record_path(name).read_text())
        except (OSError, ValueError):
            return None
        return resolve_paths(record, self.out, self.data) if isinstance(record, dict) else None

    def fingerprint(self, stage: Stage) -> str:
        """The hash of the stage's configuration, its paths relative to ``out`` and the data
        root, and of the fingerprints of the stages it needs."""
        return _digest({"config": self.paths(plain(stage.config)),
                        "needs": [self.fingerprints.get(n, "") for n in stage.needs]})

    def _absolute_fingerprint(self, stage: Stage) -> str:
        """The fingerprint as records with absolute paths hold it."""
        return _digest({"config": stage.config,
                        "needs": [self.absolute_fingerprints.get(n, "") for n in stage.needs]})

    def _fingerprint_all(self, stages: Sequence[Stage]) -> None:
        for stage in stages:
            if stage.name not in self.fingerprints:
                self.fingerprints[stage.name] = self.fingerprint(stage)
                self.absolute_fingerprints[stage.name] = self._absolute_fingerprint(stage)

    def is_forced(self, stage: Stage) -> bool:
        return any(matches(f, stage.name, stage.kind) for f in self.force)

    def _stale(self, stage: Stage) -> str:
        """Why the stage's record does not make it current ("" when it does)."""
        self._fingerprint_all([stage])
        record = self._record(stage.name)
        if record is None:
            return "not run before"
        if record.get("fingerprint") not in (self.fingerprints[stage.name],
                                             self.absolute_fingerprints[stage.name]):
            return "configuration changed"
        missing = [p for p in record.get("result", {}).get("outputs", []) if not Path(p).exists()]
        if missing:
            return f"output {missing[0]} is missing"
        finished = float(record.get("finished", 0.0))
        for need in stage.needs:
            if float((self._record(need) or {}).get("finished", 0.0)) > finished:
                return f"{need} ran again since"
        return ""

    def is_current(self, stage: Stage) -> bool:
        """Whether ``stage`` finished earlier with this very configuration, after the stages it
        needs, and its outputs are still there (``--force`` aside)."""
        return not self._stale(stage)

    def plan(self, stages: Sequence[Stage]) -> dict[str, str]:
        """Stage name -> why it runs, for every stage that will run (the others are skipped).

        Dependencies must come before the stages that need them.
        """
        self.fingerprints, self.absolute_fingerprints = {}, {}
        self._fingerprint_all(stages)
        to_run: dict[str, str] = {}
        for stage in stages:
            rerun = next((n for n in stage.needs if n in to_run), None)
            reason = ("forced" if self.is_forced(stage) else self._stale(stage)
                      or (f"{rerun} runs" if rerun else ""))
            if reason:
                to_run[stage.name] = reason
        return to_run

    def run_all(self, stages: Sequence[Stage]) -> dict[str, Outcome]:
        """Run (or skip) every stage, in order; a stage whose dependency failed is blocked.

        Dependencies must come before the stages that need them. A training interruption
        (Ctrl-C, SIGTERM) is re-raised after the stage is reported.
        """
        to_run = self.plan(stages)
        total_estimate = sum(s.estimate for s in stages if s.name in to_run) or 1.0
        started = time.perf_counter()
        spent_estimate = 0.0
        for k, stage in enumerate(stages, 1):
            head = f"[{k}/{len(stages)}] {stage.name}"
            blocked = [n for n in stage.needs
                       if self.outcomes.get(n, Outcome(n, "done")).status in ("failed",
                                                                               "blocked")]
            if blocked:
                self._finish(head, Outcome(stage.name, "blocked", error=f"needs {blocked[0]}"))
                continue
            if stage.name not in to_run:
                record = self._record(stage.name) or {}
                self._finish(head, Outcome(stage.name, "skipped", result=record.get("result",
                                                                                   {})))
                continue
            elapsed = time.perf_counter() - started
            # measured pace (seconds per estimated second), pulled towards 1 while little has run
            prior = PACE_PRIOR * total_estimate
            pace = (elapsed + prior) / (spent_estimate + prior)
            eta = (total_estimate - spent_estimate) * pace
            self._say(f"{head} ... ({to_run[stage.name]}; elapsed {format_duration(elapsed)}, "
                      f"ETA {format_duration(eta)})")
            self._record_path(stage.name).unlink(missing_ok=True)
            self._run(head, stage)
            share = work_share(self.outcomes[stage.name].result)
            total_estimate -= stage.estimate * (1.0 - share)
            spent_estimate += stage.estimate * share
        return self.outcomes

    def _run(self, head: str, stage: Stage) -> None:
        t0 = time.perf_counter()
        try:
            result = dict(stage.run())
        except TrainingInterrupted:
            self._finish(head, Outcome(stage.name, "failed", time.perf_counter() - t0,
                                       error="interrupted"))
            raise
        except VaecamError as exc:
            self._finish(head, Outcome(stage.name, "failed", time.perf_counter() - t0,
                                       error=" ".join(str(exc).split())))
        except Exception as exc:  # noqa: BLE001 - reported, logged, and the others go on
            logger.error("stage %s failed:\n%s", stage.name, traceback.format_exc())
            message = " ".join(str(exc).split())
            self._finish(head, Outcome(stage.name, "failed", time.perf_counter() - t0,
                                       error=f"{type(exc).__name__}: {message}"))
        else:
            seconds = time.perf_counter() - t0
            atomic_write_text(self._record_path(stage.name), json.dumps(self.paths(plain({
                "name": stage.name, "kind": stage.kind,
                "fingerprint": self.fingerprints[stage.name], "config": stage.config,
                "command": stage.command, "finished": time.time(),
                "seconds": round(seconds, 2), "result": result,
            })), indent=2, default=str) + "\n")
            self._finish(head, Outcome(stage.name, "done", seconds, result))

    def _say(self, line: str) -> None:
        self.announce(line)
        logger.info(line)

    def _finish(self, head: str, outcome: Outcome) -> None:
        self.outcomes[outcome.name] = outcome
        if outcome.status == "done":
            line = f"{head} done in {format_duration(outcome.seconds)}"
        elif outcome.status == "skipped":
            line = f"{head} skipped (finished earlier with the same configuration)"
        else:
            line = f"{head} {outcome.status.upper()}: {outcome.error}"
        self._say(line)

    def seconds(self, name: str) -> float:
        """Wall time of a stage: this invocation's, or the recorded one when it was skipped."""
        outcome = self.outcomes.get(name)
        if outcome is not None and outcome.status in ("done", "failed"):
            return outcome.seconds
        return float((self._record(name) or {}).get("seconds", 0.0))
