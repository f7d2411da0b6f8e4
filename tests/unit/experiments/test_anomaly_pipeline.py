"""A new dataset is one :class:`AnomalyExperiment`: the shared pipeline loads its checkpoint,
builds its data, scores every map and writes the spec's record, note and table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from vaecam.errors import ConfigError
from vaecam.experiments.anomaly import AnomalyExperiment, DataSource, LocalizationData, localize
from vaecam.maps import build_map
from vaecam.metrics.localization import pixel_auroc
from vaecam.models import build_model
from vaecam.report.table import Table
from vaecam.training.checkpoints import atomic_torch_save, load_model, vaecam_metadata

TINY = {"input_shape": [1, 24, 24], "latent_dim": 4, "channels": [4, 6, 8], "hidden": 16}


class Squares(Dataset):
    """Noise images with a bright square in the anomalous ones; items as the pipeline reads."""

    def __init__(self, n: int = 8):
        gen = torch.Generator().manual_seed(3)
        self.images = torch.rand(n, 1, 24, 24, generator=gen) * 0.3
        self.masks = torch.zeros(n, 24, 24, dtype=torch.bool)
        self.masks[n // 2 :, 6:14, 8:16] = True
        self.images[:, 0][self.masks] = 1.0
        self.labels = self.masks.flatten(1).any(1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], self.masks[i], "squares", i


def _checkpoint(tmp_path: Path, root: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("ucsd-vae", **TINY)
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    atomic_torch_save({"vaecam": vaecam_metadata(model, seed=0, data={"root": str(root)}),
                       "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}},
                      path)
    return path


def _find(options, trained_on) -> DataSource:
    if not (options.get("data") or trained_on.get("root")):
        raise ConfigError("no --data given")
    return DataSource(Path(options.get("data") or trained_on["root"]))


def _load(source, size, seeds, options) -> LocalizationData:
    test = Squares()
    train_sets = {s: TensorDataset(torch.rand(6, 1, size, size)) for s in seeds}
    return LocalizationData(test, test.labels, train_sets,
                            {"root": str(source.root), "image_size": size},
                            units=("pair", [i // 2 for i in range(len(test))]),
                            switches={"shape": "sq"})


SQUARES = AnomalyExperiment(
    name="squares", model="ucsd-vae", train=lambda options, cfg: pytest.fail("not trained here"),
    default_layers=("conv1",), find_data=_find, load=_load,
    title=lambda run: "Squares", note=lambda run: f"{run.agg.first.n_images} squares.",
    references=lambda source: {"paper": 0.9},
    tables=(("Paper table", lambda results, run: Table(["layer"], [[list(run.cfg.layers)[0]]])),),
)


def test_a_spec_is_all_a_dataset_adds(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    options = {"checkpoint": _checkpoint(tmp_path, root), "out": tmp_path / "loc",
               "maps": "recon-abs", "resamples": 100, "device": "cpu", "no_progress": True,
               "overlays": 2}
    results = localize(SQUARES, options)
    written = json.loads((tmp_path / "loc" / "results.json").read_text())
    assert written["experiment"] == "squares-localization" and written["note"] == "8 squares."
    assert written["references"] == {"paper": 0.9} and written["seeds"] == [0]
    assert written["switches"]["shape"] == "sq" and written["switches"]["layers"] == {
        "conv1": "encoder.0"}
    assert written["bootstrap"]["unit"] == "pair" and written["bootstrap"]["n_units"] == 4
    assert [s["name"] for s in written["settings"]] == ["recon-abs", "mean-diff", "random"]
    test, (model, _) = Squares(), load_model(options["checkpoint"])
    with torch.no_grad():
        expected = pixel_auroc(build_map("recon-abs")(model, test.images), test.masks)
    cell = written["settings"][0]["metrics"]["pixel_auroc"]
    assert cell["per_seed"] == [pytest.approx(expected, abs=1e-12)]
    table = (tmp_path / "loc" / "table.md").read_text()
    assert "## Paper table\n\n8 squares.\n" in table and "| conv1 |" in table
    assert results["table_md"] == table


def test_a_spec_checks_and_finds_its_data_before_writing(tmp_path):
    checkpoint = _checkpoint(tmp_path, tmp_path / "nowhere")

    def refuse(cfg, model):
        raise ConfigError(f"layer {list(cfg.layers)[0]} has no row")

    strict = AnomalyExperiment(**{**SQUARES.__dict__, "validate": refuse})
    with pytest.raises(ConfigError, match="layer conv1 has no row"):
        localize(strict, {"checkpoint": checkpoint, "out": tmp_path / "a"})
    lost = AnomalyExperiment(**{**SQUARES.__dict__,
                                "find_data": lambda options, trained_on: _find(options, {})})
    with pytest.raises(ConfigError, match="no --data"):
        localize(lost, {"checkpoint": checkpoint, "out": tmp_path / "b"})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
