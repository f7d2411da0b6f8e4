"""End to end through ``vaecam.cli.main`` on a folder of one's own images: train and localize
with the smoke preset, and broken mask folders that must end in exit status 2 with one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaecam.cli import main
from vaecam.data.synthetic import make_folder_like

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(module_tmp_path: Path) -> tuple[Path, Path]:
    """A generated image folder (32 px) and a smoke-trained checkpoint folder."""
    base = module_tmp_path
    assert main(["data", "synth", "folder", str(base), "--n-train", "16", "--n-test-normal", "3",
                 "--n-test-abnormal", "3"]) == 0
    root = base / "images"
    out = base / "run"
    assert main(["train", "folder", "--preset", "smoke", "--data", str(root), "--out", str(out),
                 "--no-progress"]) == 0
    return root, out


def _localize(root: Path, checkpoint: Path, out: Path, capsys) -> tuple[int, str, str]:
    code = main(["localize", "folder", "--preset", "smoke", "--data", str(root), "--checkpoint",
                 str(checkpoint), "--out", str(out), "--maps", "recon-abs,attention",
                 "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_then_localize(trained, tmp_path, capsys):
    root, run = trained
    code, out, _ = _localize(root, run, tmp_path / "loc", capsys)
    assert code == 0 and str(tmp_path / "loc" / "results.json") in out
    results = json.loads((tmp_path / "loc" / "results.json").read_text())
    names = [s["name"] for s in results["settings"]]
    assert {"recon-abs", "mean-diff", "random"} <= set(names)
    assert any(name.startswith("attention conv") for name in names)
    assert results["experiment"] == "folder-localization"
    assert results["data"]["channels"] == 3 and results["data"]["image_size"] == 32
    assert results["training"]["0"]["data"]["n_train_images"] == 16
    baseline = next(s for s in results["settings"] if s["name"] == "recon-abs")
    assert 0.0 <= baseline["metrics"]["pixel_auroc"]["mean"] <= 1.0


def test_explain_the_abnormal_test_images_with_the_folder_model(trained, tmp_path, capsys):
    root, run = trained
    out = tmp_path / "explained"
    assert main(["explain", "--images", str(root / "test" / "abnormal"), "--checkpoint",
                 str(run / "seed0"), "--out", str(out), "--no-progress"]) == 0
    stems = sorted(p.stem for p in (root / "test" / "abnormal").glob("*.png"))
    assert sorted(p.stem for p in out.glob("*.png")) == stems
    maps = [np.load(out / f"{stem}.npy") for stem in stems]
    assert all(m.shape == (32, 32) and np.isfinite(m).all() for m in maps)
    assert "3 images explained" in capsys.readouterr().out


def _broken_copy(root: Path, tmp_path: Path, name: str) -> Path:
    copy = tmp_path / name
    shutil.copytree(root, copy)
    return copy


def _one_line_error(result: tuple[int, str, str], needle: str) -> None:
    code, _, err = result
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vaecam: error:"), err
    assert needle in lines[0], lines[0]


def test_broken_mask_folders_are_one_line_errors(trained, tmp_path, capsys):
    root, run = trained
    colour = _broken_copy(root, tmp_path, "colour")
    red = np.zeros((32, 32, 3), np.uint8)
    red[4:8, 4:8] = (255, 0, 0)
    Image.fromarray(red, "RGB").save(colour / "masks" / "000.png")
    _one_line_error(_localize(colour, run, tmp_path / "a", capsys),
                    "masks must be single-channel (grayscale or binary)")

    unmatched = _broken_copy(root, tmp_path, "unmatched")
    shutil.copy(unmatched / "masks" / "000.png", unmatched / "masks" / "extra.png")
    _one_line_error(_localize(unmatched, run, tmp_path / "b", capsys), "extra.png")

    no_masks = _broken_copy(root, tmp_path, "no_masks")
    shutil.rmtree(no_masks / "masks")
    _one_line_error(_localize(no_masks, run, tmp_path / "c", capsys), "no masks folder")
    gray = make_folder_like(tmp_path / "gray", n_train=2, n_test_normal=1, n_test_abnormal=1,
                            grayscale=True)
    _one_line_error(_localize(gray, run, tmp_path / "d", capsys),
                    "trained on 3-channel images but")
    assert not any((tmp_path / d).exists() and any((tmp_path / d).iterdir()) for d in "abcd")


def test_synth_folder_refuses_the_options_of_other_layouts(tmp_path, capsys):
    code = main(["data", "synth", "folder", str(tmp_path), "--n-test-clips", "2", "--size", "32"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "--n-test-clips does not apply to 'folder' datasets" in err
