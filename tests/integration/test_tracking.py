"""``--track-localization``: localisation scored along training, one row per evaluation."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from vaecam.cli import main
from vaecam.errors import ConfigError
from vaecam.experiments.tracking import labelled_subset

pytestmark = pytest.mark.slow


def test_tracker_logs_one_row_per_evaluation_and_draws_the_figure(synth_ucsd_root, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "ucsd", "--preset", "smoke", "--data", str(synth_ucsd_root),
                 "--out", str(out), "--max-epochs", "4", "--track-localization",
                 "--track-every", "2", "--track-images", "8", "--no-progress"]) == 0
    run = out / "seed0"
    with (run / "localization_vs_epoch.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [2, 4]  # every 2 epochs, the last included
    assert rows[0].keys() >= {"recon-abs", "attention(method=2, activation=abs, layer=encoder.4)"}
    assert all(0.0 <= float(v) <= 1.0 for r in rows for k, v in r.items()
               if k not in ("epoch", "step"))
    assert (run / "localization_vs_epoch.png").stat().st_size > 0
    notes = json.loads((run / "train_config.json").read_text())["notes"]["tracking"]
    assert notes["n_images"] == 8 and "TEST split" in notes["note"]
    with next((run / "logs" / "csv").glob("version_*/metrics.csv")).open() as handle:
        logged = [r for r in csv.DictReader(handle) if r.get("localization/recon-abs")]
    assert len(logged) == 2


def test_subset_of_anomalous_and_normal_items_and_bad_input():
    labels = torch.tensor([False] * 10 + [True] * 10)
    picks = labelled_subset(labels, 8, seed=0)
    assert len(picks) == 8 and sum(labels[picks].tolist()) == 6  # a quarter normal
    assert picks == labelled_subset(labels, 8, seed=0)
    with pytest.raises(ConfigError, match="no anomalous image"):
        labelled_subset(torch.zeros(5, dtype=torch.bool), 4, seed=0)
