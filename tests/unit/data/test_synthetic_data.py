"""Generated datasets: official layouts, determinism, visible anomalies, the synthesize entry."""

from pathlib import Path

import numpy as np
import pytest

from vaecam.data.images import image_size, read_image, read_mask
from vaecam.data.synthetic import make_mvtec_like, make_ucsd_like, synthesize
from vaecam.errors import ConfigError, DataError


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_mvtec_layout(tmp_path: Path) -> None:
    folder = make_mvtec_like(tmp_path, "toy", n_train=3, n_test_good=2, n_test_defect=2, size=48)
    assert folder == tmp_path / "toy"
    assert files(folder) == sorted(
        [f"train/good/00{i}.png" for i in range(3)]
        + [f"test/good/00{i}.png" for i in range(2)]
        + [f"test/{d}/00{i}.png" for d in ("patch", "scratch") for i in range(2)]
        + [f"ground_truth/{d}/00{i}_mask.png" for d in ("patch", "scratch") for i in range(2)]
    )
    mask_path = folder / "ground_truth" / "scratch" / "001_mask.png"
    assert image_size(mask_path) == image_size(folder / "test" / "scratch" / "001.png") == (48, 48)
    raw = read_image(mask_path, "L")
    assert set(np.unique(raw)) == {0.0, 1.0}  # 0/255 PNG


def test_mvtec_anomalies_are_large_and_contrasted(tmp_path: Path) -> None:
    folder = make_mvtec_like(tmp_path, n_train=1, n_test_good=0, n_test_defect=10)
    for defect in ("patch", "scratch"):
        for i in range(10):
            mask = read_mask(folder / "ground_truth" / defect / f"{i:03d}_mask.png")
            image = read_image(folder / "test" / defect / f"{i:03d}.png", "RGB")
            assert 0.05 < mask.mean() < 0.2
            inside, outside = image[mask].mean(), image[~mask].mean()
            assert abs(inside - outside) > 0.3


def test_mvtec_is_deterministic(tmp_path: Path) -> None:
    def make(name: str, seed: int) -> Path:
        return make_mvtec_like(
            tmp_path / name, n_train=2, n_test_good=1, n_test_defect=1, seed=seed
        )

    a, b, c = make("a", 0), make("b", 0), make("c", 1)
    for rel in files(a):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    assert (a / "train/good/000.png").read_bytes() != (c / "train/good/000.png").read_bytes()


def test_ucsd_layout(tmp_path: Path) -> None:
    folder = make_ucsd_like(
        tmp_path, "UCSDped2", n_train_clips=1, n_test_clips=2, frames_per_clip=4, size=(40, 24)
    )
    assert folder == tmp_path / "UCSDped2"
    frames = [f"{t:03d}" for t in range(1, 5)]
    assert files(folder) == sorted(
        [f"Train/Train001/{f}.tif" for f in frames]
        + [f"Test/Test00{c}/{f}.tif" for c in (1, 2) for f in frames]
        + [f"Test/Test001_gt/{f}.bmp" for f in frames]
        + ["Test/UCSDped2.m"]
    )
    assert image_size(folder / "Train" / "Train001" / "001.tif") == (40, 24)
    assert image_size(folder / "Test" / "Test001_gt" / "004.bmp") == (40, 24)
    assert "gt_frame = [2:4]" in (folder / "Test" / "UCSDped2.m").read_text()


def test_ucsd_mask_style_and_extension(tmp_path: Path) -> None:
    folder = make_ucsd_like(
        tmp_path,
        n_test_clips=1,
        n_unlabeled=0,
        frames_per_clip=3,
        ext="jpg",
        mask_style="frameNNN.png",
    )
    assert (folder / "Test" / "Test001" / "003.jpg").is_file()
    assert (folder / "Test" / "Test001_gt" / "frame003.png").is_file()


def test_ucsd_cart_only_in_late_frames(tmp_path: Path) -> None:
    folder = make_ucsd_like(tmp_path, n_test_clips=1, n_unlabeled=0, frames_per_clip=9)
    gt = folder / "Test" / "Test001_gt"
    counts = [read_mask(gt / f"{t:03d}.bmp").sum() for t in range(1, 10)]
    assert counts[:3] == [0, 0, 0] and min(counts[3:]) > 0.03 * 120 * 80


def test_bad_generator_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="defects must be among patch, scratch"):
        make_mvtec_like(tmp_path, defects=("hole",))
    with pytest.raises(ConfigError, match="mask_style"):
        make_ucsd_like(tmp_path, mask_style="NNN.gif")
    with pytest.raises(ConfigError, match="n_unlabeled"):
        make_ucsd_like(tmp_path, n_test_clips=1, n_unlabeled=2)


def test_synthesize_replaces_only_what_it_generated(tmp_path: Path) -> None:
    out = tmp_path / "out"
    root = synthesize("ucsd", out, n_train_clips=1, n_test_clips=1, frames_per_clip=3)
    assert root == out / "UCSDped1"
    with pytest.raises(ConfigError, match=r"UCSDped1 already holds the results of 'vaecam data "
                       r"synth ucsd'; pass --overwrite") as info:
        synthesize("ucsd", out)
    assert "\n" not in str(info.value)
    (out / "keep.txt").write_text("mine")
    synthesize("ucsd", out, overwrite=True, n_train_clips=2, n_test_clips=1, frames_per_clip=3)
    assert sorted(p.name for p in (root / "Train").iterdir()) == ["Train001", "Train002"]
    assert (out / "keep.txt").read_text() == "mine"
    (root / "Train" / "notes.txt").write_text("a file vaecam did not write")
    with pytest.raises(ConfigError, match="holds files vaecam did not write"):
        synthesize("ucsd", out, overwrite=True)
    assert (root / "Train" / "notes.txt").is_file() and (root / "Train" / "Train002").is_dir()
    real = tmp_path / "real"
    (real / "UCSDped1" / "Train" / "Train001").mkdir(parents=True)  # a user's real dataset
    (real / "UCSDped1" / "Train" / "Train001" / "001.tif").write_bytes(b"frame")
    with pytest.raises(ConfigError, match="holds files vaecam did not write"):
        synthesize("ucsd", real, overwrite=True)
    assert (real / "UCSDped1" / "Train" / "Train001" / "001.tif").read_bytes() == b"frame"


def test_synthesize_mvtec_and_bad_requests(tmp_path: Path) -> None:
    folder = synthesize("mvtec", tmp_path / "m", category="toy", n_train=2, n_test_defect=1)
    assert (folder / "train" / "good" / "001.png").is_file()
    with pytest.raises(ConfigError, match="unknown synthetic dataset kind"):
        synthesize("cifar", tmp_path / "x")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) frames for mvtec; valid: category"):
        synthesize("mvtec", tmp_path / "x", frames=3)
    with pytest.raises(ConfigError, match="plain folder name"):
        synthesize("mvtec", tmp_path / "m", overwrite=True, category="..")
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="is a file, not a folder"):
        synthesize("mvtec", tmp_path / "file")
