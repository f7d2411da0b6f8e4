"""Train and localize on small slices of the real data in ../shared/data (MVTec screw, UCSD Ped2).

A few training steps and a few test images: the runs must work end to end on the official
layouts and produce filled tables, not good numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vaecam.cli import main

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small models run far slower with 2 threads when the other core is busy (OpenMP)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _dataset(shared_data: Path, relative: str) -> Path:
    path = shared_data / relative
    if not path.is_dir():
        pytest.skip(f"{path} is absent from the shared data folder")
    return path


def _assert_filled_tables(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    rows = [line for line in (out / "table.md").read_text().splitlines() if line.startswith("|")]
    assert len(rows) > 4
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        assert all(cells) and "–" not in cells, row
    return results


def test_ucsd_ped2_slice(shared_data, tmp_path, capsys):
    root = _dataset(shared_data, "ucsd/UCSDped2")
    run, out = tmp_path / "run", tmp_path / "loc"
    assert main(["train", "ucsd", "--preset", "smoke", "--data", str(root), "--out", str(run),
                 "--max-steps", "3", "--no-progress"]) == 0
    assert main(["localize", "ucsd", "--preset", "smoke", "--checkpoint", str(run),
                 "--out", str(out), "--max-images", "8"]) == 0
    results = _assert_filled_tables(out)
    assert "UCSD Ped1 numbers" in results["table_md"]  # Ped2 is flagged as not comparable
    assert results["n_images"] == 8 and results["data"]["name"] == "UCSDped2"
    assert len(results["data"]["clips"]) == 6


def test_mvtec_screw_slice(shared_data, tmp_path, capsys):
    root = _dataset(shared_data, "mvtec")
    _dataset(shared_data, "mvtec/screw")
    run, out = tmp_path / "run", tmp_path / "loc"
    assert main(["train", "mvtec", "--preset", "smoke", "--data", str(root), "--category", "screw",
                 "--out", str(run), "--max-steps", "3", "--no-progress"]) == 0
    assert main(["localize", "mvtec", "--preset", "smoke", "--checkpoint", str(run),
                 "--out", str(out), "--max-images", "8"]) == 0
    results = _assert_filled_tables(out)
    assert results["n_images"] == 8 and results["image_level_metrics"]
    assert "| screw | pixel AUROC | 0.970 | 0.520 | 0.510 |" in results["table_md"]
