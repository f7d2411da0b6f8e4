"""Adding a map is adding a file: a map class written as one new module of ``vaecam.maps``
shows in ``vaecam localize --help``, runs with ``--maps <name>`` and has its rows in every
output, with no other file edited."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

import vaecam.maps
from vaecam.cli import main
from vaecam.maps import registry

pytestmark = pytest.mark.slow

MODULE = "ink"
PLUGIN = '''"""``ink``: the brightness of each pixel, mean over channels (needs no model)."""

from torch import Tensor, nn

from vaecam.maps.base import AnomalyMap, ForwardCache
from vaecam.maps.registry import register_map


@register_map
class InkMap(AnomalyMap):
    name = "ink"
    summary = "pixel brightness, a plugin map"
    needs_decoder = False

    def check(self, model: nn.Module) -> None:
        """Needs nothing from the model."""

    def compute(self, cache: ForwardCache) -> Tensor:
        return cache.images.mean(dim=1)
'''


@pytest.fixture
def ink_map(monkeypatch: pytest.MonkeyPatch):
    """The ``ink`` module written into the package folder; removed again, and the registry back
    to the built-in maps, afterwards."""
    path = Path(vaecam.maps.__file__).parent / f"{MODULE}.py"
    assert not path.exists(), f"{path} exists already; this test will not overwrite it"
    registry.available_maps()  # the built-in maps registered before the registry is copied
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    path.write_text(PLUGIN)
    importlib.invalidate_caches()
    try:
        yield "ink"
    finally:
        path.unlink()
        sys.modules.pop(f"vaecam.maps.{MODULE}", None)
        importlib.invalidate_caches()


@pytest.fixture(scope="module")
def mvtec_checkpoint(synth_mvtec_root: Path, module_tmp_path: Path) -> Path:
    """A ResNet18-VAE trained briefly (the smoke preset, one epoch of 16 augmented images) on the
    generated MVTec category: the maps need a model, not a good one."""
    out = module_tmp_path / "mvtec_run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "mvtec", "--preset", "smoke", "--data", str(synth_mvtec_root),
                     "--category", "synthetic", "--max-epochs", "1", "--num-augmented", "16",
                     "--out", str(out), "--no-progress"]) == 0
    finally:
        torch.set_num_threads(before)
    return out


def test_the_plugin_is_listed_in_the_help(ink_map, capsys):
    assert main(["localize", "mvtec", "--help"]) == 0
    assert "ink (pixel brightness, a plugin map)" in " ".join(capsys.readouterr().out.split())
    assert "ink" in registry.cheap_maps()


def test_the_plugin_runs_and_fills_every_output(ink_map, mvtec_checkpoint, tmp_path, capsys):
    out = tmp_path / "loc"
    code = main(["localize", "mvtec", "--preset", "smoke", "--checkpoint", str(mvtec_checkpoint),
                 "--out", str(out), "--maps", "ink", "--resamples", "100", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    stdout = captured.out
    results = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in results["settings"]] == ["recon-abs", "mean-diff", "random", "ink"]
    ink = results["settings"][-1]
    assert ink["family"] == "ink" and ink["label"] == "ink"
    assert 0.0 <= ink["metrics"]["pixel_auroc"]["mean"] <= 1.0
    assert ink["metrics"]["pixel_auroc"]["vs_baseline"]["verdict"] in ("better", "worse",
                                                                       "undecided")
    rows = [line for line in (out / "table.md").read_text().splitlines()
            if line.startswith("| ink |")]
    assert len(rows) == 2  # the map-methods table and the table of every setting
    assert all("–" not in row for row in rows)
    assert any(line.startswith("| ink |") for line in stdout.splitlines())  # the printed table
    assert any(line.startswith("| ink |") for line in results["table_md"].splitlines())
