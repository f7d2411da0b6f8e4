"""Stage records name paths relative to --out and the data root, and stay current when the
output folder is moved; records with absolute paths from an earlier vaecam are still current."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from vaecam.reproduce.stages import Stage, StageRunner


def _stages(out: Path, data: Path, calls: list[str]) -> list[Stage]:
    def make() -> dict:
        calls.append("make")
        (out / "made.txt").write_text("x")
        return {"file": str(out / "made.txt"), "outputs": [str(out / "made.txt")]}

    def use() -> dict:
        calls.append("use")
        return {"outputs": [str(out)]}

    return [Stage("a", "data", {"root": out / "a", "data": data / "ucsd"}, make, 1.0,
                  command=f"vaecam data synth {out / 'a'} --data {data}"),
            Stage("b", "localize", {"checkpoints": out / "a"}, use, 1.0, needs=["a"])]


def _quiet(line: str) -> None:
    pass


def test_records_hold_no_absolute_path_and_a_moved_folder_is_still_current(tmp_path):
    out, calls = tmp_path / "first" / "out", []
    data = out / "data"
    out.mkdir(parents=True)
    StageRunner(out, announce=_quiet, data=data).run_all(_stages(out, data, calls))
    assert calls == ["make", "use"]
    record = (out / ".stages" / "a.json").read_text()
    assert str(tmp_path) not in record
    assert json.loads(record)["config"] == {"root": "$OUT/a", "data": "$DATA/ucsd"}
    assert json.loads(record)["command"] == "vaecam data synth $OUT/a --data $DATA"
    assert json.loads(record)["result"]["outputs"] == ["$OUT/made.txt"]

    rerun = StageRunner(out, announce=_quiet, data=data)
    outcomes = rerun.run_all(_stages(out, data, calls))
    assert calls == ["make", "use"] and {o.status for o in outcomes.values()} == {"skipped"}
    assert outcomes["a"].result["file"] == str(out / "made.txt")  # read back as a path

    moved = tmp_path / "elsewhere" / "out"
    shutil.move(out.parent, moved.parent)
    outcomes = StageRunner(moved, announce=_quiet, data=moved / "data").run_all(
        _stages(moved, moved / "data", calls))
    assert calls == ["make", "use"] and outcomes["b"].status == "skipped"
    assert outcomes["a"].result["outputs"] == [str(moved / "made.txt")]

    (moved / "made.txt").unlink()  # an output read back from $OUT/... is checked
    assert StageRunner(moved, data=moved / "data").plan(_stages(moved, moved / "data", calls)) \
        == {"a": f"output {moved / 'made.txt'} is missing", "b": "a runs"}


def _absolute_digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()
                          ).hexdigest()[:16]


def test_a_record_with_absolute_paths_from_an_earlier_vaecam_is_current(tmp_path):
    out, data, calls = tmp_path / "out", tmp_path / "data", []
    stages = _stages(out, data, calls)
    (out / ".stages").mkdir(parents=True)
    (out / "made.txt").write_text("x")
    first = _absolute_digest({"config": {"root": str(out / "a"), "data": str(data / "ucsd")},
                              "needs": []})
    second = _absolute_digest({"config": {"checkpoints": str(out / "a")}, "needs": [first]})
    for name, fingerprint, outputs in (("a", first, [str(out / "made.txt")]),
                                       ("b", second, [str(out)])):
        (out / ".stages" / f"{name}.json").write_text(json.dumps(
            {"fingerprint": fingerprint, "finished": 1.0, "result": {"outputs": outputs}}))
    assert StageRunner(out, data=data).plan(stages) == {}
