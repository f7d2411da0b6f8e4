"""train_config.json names paths relative to the run folder and reads them back as paths."""

from __future__ import annotations

import json
import shutil

from vaecam.training.run_folder import (
    CONFIG_NAME,
    identity_differences,
    read_run_record,
    write_run_record,
)


def test_the_run_record_is_portable_and_a_moved_run_keeps_its_identity(tmp_path):
    top = tmp_path / "out"
    run, data = top / "ucsd" / "train" / "seed0", top / "data" / "UCSDped1"
    identity = {"data": {"kind": "ucsd", "root": data}, "seed": 0}
    write_run_record(run, "ucsd", identity, {"out_dir": run, "max_epochs": 1})
    text = (run / CONFIG_NAME).read_text()
    assert str(tmp_path) not in text
    stored = json.loads(text)
    assert stored["identity"]["data"]["root"] == "$OUT/../../../data/UCSDped1"
    assert stored["train"]["out_dir"] == "$OUT"
    assert read_run_record(run)["identity"]["data"]["root"] == str(data)

    moved = tmp_path / "moved"
    shutil.move(top, moved)
    moved_run = moved / "ucsd" / "train" / "seed0"
    record = read_run_record(moved_run)
    assert record["train"]["out_dir"] == str(moved_run)
    now = {"data": {"kind": "ucsd", "root": moved / "data" / "UCSDped1"}, "seed": 0}
    assert identity_differences(record["identity"], now) == []
    assert identity_differences(record["identity"], identity) != []  # the data moved too


def test_an_earlier_record_with_absolute_paths_reads_the_same(tmp_path):
    (tmp_path / CONFIG_NAME).write_text(json.dumps(
        {"experiment": "ucsd", "identity": {"data": {"root": "/srv/data/UCSDped1"}}}))
    assert read_run_record(tmp_path)["identity"] == {"data": {"root": "/srv/data/UCSDped1"}}
