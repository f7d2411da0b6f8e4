"""Paths in a checkpoint's ``vaecam`` entry are relative to its run folder and read back as
paths; an earlier checkpoint with absolute paths reads the same."""

from __future__ import annotations

import torch

from vaecam.training.checkpoints import read_checkpoint


def _save(path, meta):
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "vaecam": meta}, path)


def test_run_relative_paths_in_the_metadata_are_absolute_when_read(tmp_path):
    last = tmp_path / "out" / "ucsd" / "seed0" / "checkpoints" / "last.ckpt"
    _save(last, {"model": "ucsd-vae", "data": {"root": "$OUT/../../data/UCSDped1"},
                 "train_options": {"out": "$OUT", "preset": "smoke"}})
    meta = read_checkpoint(last)["vaecam"]
    assert meta["data"]["root"] == str(tmp_path / "out" / "data" / "UCSDped1")
    assert meta["train_options"] == {"out": str(tmp_path / "out" / "ucsd" / "seed0"),
                                     "preset": "smoke"}
    old = tmp_path / "old" / "checkpoints" / "last.ckpt"
    _save(old, {"model": "ucsd-vae", "data": {"root": "/srv/data/UCSDped1"}})
    assert read_checkpoint(old)["vaecam"]["data"]["root"] == "/srv/data/UCSDped1"
