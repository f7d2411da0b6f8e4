"""Resumable stages: run each once, skip it while its config is unchanged, report failures.

A :class:`Stage` is one unit of a reproduction (train one seed, localise one dataset, score one
run, write the report) with a resolved configuration and the stages it depends on. Its
*fingerprint* hashes its configuration and its dependencies' fingerprints, so a changed option
re-runs exactly the stages it reaches. :class:`StageRunner` keeps one record per finished stage
(``.stages/<name>.json``: fingerprint, wall time, result); a stage whose record matches is
skipped, a failed stage is reported and the stages that do not need it go on. Progress is one
line per stage with elapsed time and an ETA from the preset's estimates, scaled by how fast the
finished stages ran compared with their estimates.
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
from vaecam.report.document import format_duration
from vaecam.training.run_folder import plain
from vaecam.training.trainer import TrainingInterrupted

logger = logging.getLogger("vaecam.reproduce")


@dataclass
class Stage:
    """One step: ``run()`` returns a JSON-able result kept in the stage record."""

    name: str
    kind: str
    config: Mapping[str, Any]
    run: Callable[[], Mapping[str, Any]]
    estimate: float
    needs: Sequence[str] = ()


@dataclass
class Outcome:
    """What became of a stage in this invocation."""

    name: str
    status: str  # "done", "skipped", "failed", "blocked"
    seconds: float = 0.0
    result: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(plain(data), sort_keys=True, default=str).encode()
                          ).hexdigest()[:16]


class StageRunner:
    """Run stages in order under ``out``; records in ``out/.stages``."""

    def __init__(self, out: Path, force: Sequence[str] = (),
                 announce: Callable[[str], None] = print):
        self.out = Path(out)
        self.records = self.out / ".stages"
        self.force = list(force)
        self.announce = announce
        self.fingerprints: dict[str, str] = {}
        self.outcomes: dict[str, Outcome] = {}

    def _record_path(self, name: str) -> Path:
        return self.records / (name.replace("/", "__") + ".json")

    def _record(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._record_path(name).read_text())
        except (OSError, ValueError):
            return None

    def fingerprint(self, stage: Stage) -> str:
        return _digest({"config": stage.config,
                        "needs": [self.fingerprints.get(n, "") for n in stage.needs]})

    def is_forced(self, stage: Stage) -> bool:
        return any(stage.name == f or stage.name.startswith(f + "/") or stage.kind == f
                   for f in self.force)

    def is_current(self, stage: Stage) -> bool:
        """Whether ``stage`` finished earlier with this very configuration and its outputs are
        still there."""
        record = self._record(stage.name)
        if record is None or self.is_forced(stage):
            return False
        outputs = record.get("result", {}).get("outputs", [])
        return (record.get("fingerprint") == self.fingerprints[stage.name]
                and all(Path(p).exists() for p in outputs))

    def run_all(self, stages: Sequence[Stage]) -> dict[str, Outcome]:
        """Run (or skip) every stage, in order; a stage whose dependency failed is blocked.

        Dependencies must come before the stages that need them.
        """
        for stage in stages:
            self.fingerprints[stage.name] = self.fingerprint(stage)
        total_estimate = sum(s.estimate for s in stages if not self.is_current(s)) or 1.0
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
            if self.is_current(stage):
                record = self._record(stage.name) or {}
                self._finish(head, Outcome(stage.name, "skipped", result=record.get("result",
                                                                                   {})))
                continue
            elapsed = time.perf_counter() - started
            pace = elapsed / spent_estimate if spent_estimate > 0 else 1.0
            eta = (total_estimate - spent_estimate) * pace
            self.announce(f"{head} ... (elapsed {format_duration(elapsed)}, "
                          f"ETA {format_duration(eta)})")
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
                self._finish(head, Outcome(stage.name, "failed", time.perf_counter() - t0,
                                           error=f"{type(exc).__name__}: {exc}"))
            else:
                seconds = time.perf_counter() - t0
                atomic_write_text(self._record_path(stage.name), json.dumps(plain({
                    "name": stage.name, "kind": stage.kind,
                    "fingerprint": self.fingerprints[stage.name], "config": stage.config,
                    "seconds": round(seconds, 2), "result": result,
                }), indent=2, default=str) + "\n")
                self._finish(head, Outcome(stage.name, "done", seconds, result))
            spent_estimate += stage.estimate
        return self.outcomes

    def _finish(self, head: str, outcome: Outcome) -> None:
        self.outcomes[outcome.name] = outcome
        if outcome.status == "done":
            line = f"{head} done in {format_duration(outcome.seconds)}"
        elif outcome.status == "skipped":
            line = f"{head} skipped (finished earlier with the same configuration)"
        else:
            line = f"{head} {outcome.status.upper()}: {outcome.error}"
        self.announce(line)
        logger.info(line)

    def seconds(self, name: str) -> float:
        """Wall time of a stage: this invocation's, or the recorded one when it was skipped."""
        outcome = self.outcomes.get(name)
        if outcome is not None and outcome.status == "done":
            return outcome.seconds
        return float((self._record(name) or {}).get("seconds", 0.0))
