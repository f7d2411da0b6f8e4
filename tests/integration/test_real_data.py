"""Train and localize on small slices of the real data in ../shared/data (MVTec screw, UCSD Ped2).

A few training steps and a few test images: the runs must work end to end on the official
layouts, and their numbers must be right for the files on disk. The baseline's pixel AUROC is
recomputed here from the image and mask files, read with Pillow and scored with scikit-learn,
independently of vaecam's loaders and metrics.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from vaecam.cli import main
from vaecam.training.checkpoints import load_model

pytestmark = [pytest.mark.realdata, pytest.mark.slow]



def _dataset(shared_data: Path, relative: str) -> Path:
    path = shared_data / relative
    if not path.is_dir():
        pytest.skip(f"{path} is absent from the shared data folder")
    return path


def _gray(path: Path, size: int) -> np.ndarray:
    img = Image.open(path).convert("L").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def _mask(path: Path | None, size: int) -> np.ndarray:
    if path is None:
        return np.zeros((size, size), dtype=bool)
    mask = np.asarray(Image.open(path).convert("L")) >= 128
    small = Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size),
                                                                Image.Resampling.NEAREST)
    return np.asarray(small) > 0


def _baseline_auroc(run: Path, images: np.ndarray, masks: np.ndarray) -> float:
    model, _ = load_model(run / "seed0" / "checkpoints" / "last.ckpt")
    x = torch.from_numpy(images)
    with torch.no_grad():
        recon = model.decode(model.encode(x)[0])
    error = (x - recon).abs().mean(dim=1).numpy()
    return float(roc_auc_score(masks.ravel(), error.ravel()))


def _recon_abs(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    return next(s for s in results["settings"] if s["name"] == "recon-abs"), results


def test_ucsd_ped2_slice(shared_data, tmp_path):
    root = _dataset(shared_data, "ucsd/UCSDped2")
    run, out = tmp_path / "run", tmp_path / "loc"
    assert main(["train", "ucsd", "--preset", "smoke", "--data", str(root), "--out", str(run),
                 "--max-steps", "3", "--no-progress"]) == 0
    assert main(["localize", "ucsd", "--preset", "smoke", "--checkpoint", str(run),
                 "--out", str(out), "--max-images", "8", "--maps", "recon-abs",
                 "--no-progress"]) == 0
    setting, results = _recon_abs(out)
    assert results["n_images"] == 8 and results["data"]["name"] == "UCSDped2"
    assert results["data"]["clips"] == [f"Test00{i}" for i in range(1, 7)]
    assert "UCSD Ped1 numbers" in results["table_md"]  # Ped2 is flagged as not comparable
    # the same 8 frames, evenly spaced over all 1,020, read here straight from the files
    frames = []
    for clip in sorted((root / "Test").glob("Test0??")):
        if not clip.name[4:].isdigit():
            continue
        masks = {int(re.findall(r"\d+", p.stem)[-1]): p
                 for p in (root / "Test" / f"{clip.name}_gt").iterdir()}
        for frame in sorted(clip.iterdir(), key=lambda p: int(p.stem)):
            frames.append((frame, masks[int(frame.stem)]))
    assert len(frames) == 1020
    picks = sorted(set(np.linspace(0, len(frames) - 1, 8).round().astype(int)))
    size = results["data"]["image_size"]
    images = np.stack([_gray(frames[i][0], size)[None] for i in picks])
    masks = np.stack([_mask(frames[i][1], size) for i in picks])
    expected = _baseline_auroc(run, images, masks)
    assert setting["metrics"]["pixel_auroc"]["mean"] == pytest.approx(expected, abs=1e-6)


def test_mvtec_screw_slice(shared_data, tmp_path):
    root = _dataset(shared_data, "mvtec")
    category = _dataset(shared_data, "mvtec/screw")
    run, out = tmp_path / "run", tmp_path / "loc"
    assert main(["train", "mvtec", "--preset", "smoke", "--data", str(root), "--category", "screw",
                 "--out", str(run), "--max-steps", "3", "--no-progress"]) == 0
    assert main(["localize", "mvtec", "--preset", "smoke", "--checkpoint", str(run),
                 "--out", str(out), "--max-images", "8", "--maps", "recon-abs",
                 "--no-progress"]) == 0
    setting, results = _recon_abs(out)
    assert results["n_images"] == 8 and "image_auroc_max" in setting["metrics"]
    assert "| screw | pixel AUROC | 0.97 | 0.52 | 0.51 |" in results["table_md"]
    samples = []
    for defect in sorted(p for p in (category / "test").iterdir() if p.is_dir()):
        for image in sorted(defect.glob("*.png")):
            mask = None if defect.name == "good" else \
                category / "ground_truth" / defect.name / f"{image.stem}_mask.png"
            samples.append((image, mask))
    assert len(samples) == 154
    picks = sorted(set(np.linspace(0, len(samples) - 1, 8).round().astype(int)))
    size = results["data"]["image_size"]
    images = np.stack([np.asarray(Image.open(samples[i][0]).convert("RGB").resize(
        (size, size), Image.Resampling.BILINEAR), dtype=np.float32).transpose(2, 0, 1) / 255.0
        for i in picks])
    masks = np.stack([_mask(samples[i][1], size) for i in picks])
    expected = _baseline_auroc(run, images, masks)
    assert setting["metrics"]["pixel_auroc"]["mean"] == pytest.approx(expected, abs=1e-6)
