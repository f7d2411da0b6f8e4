"""Adding a dataset is adding three files: a loader in ``vaecam/data``, a spec in
``vaecam/experiments`` and a preset (with its ``command:`` block) in ``vaecam/configs``. With
nothing else edited, ``vaecam train <name>`` and ``vaecam localize <name>`` exist, show in
``--help`` and run end to end (the recipe of docs/architecture.md)."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import pytest

import vaecam.configs
from vaecam.cli import main
from vaecam.configs.commands import dataset_commands
from vaecam.data.synthetic import make_folder_like

pytestmark = pytest.mark.slow

NAME = "pairs"

LOADER = '''"""The 'pairs' layout: <root>/train/*.png normal images; <root>/test/*.png test
images, an abnormal one with its mask beside it as <stem>_mask.png."""

from pathlib import Path

import torch
from torch.utils.data import Dataset

from vaecam.data.images import read_image
from vaecam.data.masked_test_set import MaskedSample, MaskedTestSet


def _gray(path: Path, size: int) -> torch.Tensor:
    return torch.from_numpy(read_image(path, "L", size))[None]


class PairsTrain(Dataset):
    def __init__(self, root: Path, size: int) -> None:
        self.files, self.size = sorted(Path(root, "train").glob("*.png")), size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        return _gray(self.files[index], self.size)


class PairsTest(MaskedTestSet):
    def __init__(self, root: Path, size: int) -> None:
        images = sorted(p for p in Path(root, "test").glob("*.png")
                        if not p.stem.endswith("_mask"))
        masks = [p.with_name(p.stem + "_mask.png") for p in images]
        super().__init__([MaskedSample(p, m if m.is_file() else None,
                                       "abnormal" if m.is_file() else "normal", p.stem)
                          for p, m in zip(images, masks)], size)

    def read(self, path: Path) -> torch.Tensor:
        return _gray(path, self.size)
'''

SPEC = '''"""Localisation on the 'pairs' layout with the three-conv VAE."""

from pathlib import Path

from vaecam.data.pairs import PairsTest, PairsTrain
from vaecam.experiments.anomaly import AnomalyExperiment, DataSource, LocalizationData
from vaecam.experiments.training import train_vae
from vaecam.models.ucsd import RECIPES, UCSDVAE


def train_pairs(options, cfg):
    root, size = Path(options["data"]), int(options["image_size"])
    config = {"input_shape": [1, size, size], "latent_dim": int(options["latent_dim"]),
              "channels": list(options["channels"]), "hidden": int(options["hidden"]),
              "loss": "bce", **RECIPES["batchnorm"]}
    return train_vae("ucsd-vae", config, PairsTrain(root, size), cfg, float(options["lr"]),
                     {"kind": "pairs", "root": root.resolve()}, options, inputs=[root])


def _load(source, size, seeds, options):
    test = PairsTest(source.root, size)
    return LocalizationData(test, test.labels,
                            {seed: PairsTrain(source.root, size) for seed in seeds},
                            {"root": str(source.root), "image_size": size})


PAIRS = AnomalyExperiment(
    name="pairs",
    model="ucsd-vae",
    train=train_pairs,
    default_layers=tuple(UCSDVAE.conv_layers),
    find_data=lambda options, trained: DataSource(Path(options.get("data") or trained["root"])),
    load=_load,
    title=lambda run: f"Localisation on {run.source.root.name}",
    note=lambda run: "The pairs layout.",
    references=lambda source: {},
)
'''

PRESET = '''command:
  experiment: vaecam.experiments.pairs:PAIRS
  train:
    help: train the conv VAE on a pairs folder
    description: Train the three-conv VAE on <data>/train.
    done: "trained on {data}"
    options:
      - {flag: --data, required: true, help: the pairs folder}
      - {flag: --image-size, help: image side in pixels}
  localize:
    help: pixel AUROC on a pairs folder
    description: Score every map on <data>/test against the masks beside the images.
    options:
      - {flag: --data, help: the pairs folder}
about:
  smoke: "seconds on generated data"
presets:
  smoke:
    train:
      image_size: 32
      latent_dim: 8
      channels: [8, 16, 32]
      hidden: 64
      max_epochs: 5
      batch_size: 8
      lr: 0.003
      seeds: [0]
      accelerator: cpu
    localize:
      method: ["1"]
      activation: [abs]
      layer: [conv1]
      maps: cheap
      resamples: 100
      tune: false
      eval_batch_size: 8
      overlays: 1
'''


@pytest.fixture
def pairs_dataset():
    """The three files written into the package; removed again afterwards."""
    package = Path(vaecam.configs.__file__).parents[1]
    files = {package / "data" / f"{NAME}.py": LOADER,
             package / "experiments" / f"{NAME}.py": SPEC,
             package / "configs" / f"{NAME}.yaml": PRESET}
    assert not any(p.exists() for p in files), "a 'pairs' module exists; not overwriting it"
    for path, text in files.items():
        path.write_text(text)
    importlib.invalidate_caches()
    dataset_commands.cache_clear()
    try:
        yield
    finally:
        for path in files:
            path.unlink()
        for module in (f"vaecam.data.{NAME}", f"vaecam.experiments.{NAME}"):
            sys.modules.pop(module, None)
        importlib.invalidate_caches()
        dataset_commands.cache_clear()
        vaecam.configs._parsed.cache_clear()


def _pairs_folder(tmp_path: Path) -> Path:
    """A generated own-folder dataset rearranged into the pairs layout."""
    source = make_folder_like(tmp_path / "source", n_train=12, n_test_normal=3,
                              n_test_abnormal=3, grayscale=True)
    root = tmp_path / "pairs"
    shutil.copytree(source / "train", root / "train")
    (root / "test").mkdir()
    for kind in ("normal", "abnormal"):
        for image in (source / "test" / kind).glob("*.png"):
            shutil.copy(image, root / "test" / f"{kind}_{image.name}")
    for mask in (source / "masks").glob("*.png"):
        shutil.copy(mask, root / "test" / f"abnormal_{mask.stem}_mask.png")
    return root


def test_three_new_files_make_a_dataset_with_both_commands(pairs_dataset, tmp_path, capsys):
    assert main(["train", "--help"]) == 0
    assert "train the conv VAE on a pairs folder" in capsys.readouterr().out
    root = _pairs_folder(tmp_path)
    run = tmp_path / "run"
    assert main(["train", NAME, "--preset", "smoke", "--data", str(root), "--out", str(run),
                 "--no-progress"]) == 0
    assert f"trained on {root}" in capsys.readouterr().out
    out = tmp_path / "loc"
    assert main(["localize", NAME, "--preset", "smoke", "--checkpoint", str(run),
                 "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == "pairs-localization"
    assert results["data"] == {"root": "$DATA", "image_size": 32}  # portable paths
    table = (out / "table.md").read_text()
    assert "| recon-abs |" in table and "| attention conv1 m1 abs" in table
