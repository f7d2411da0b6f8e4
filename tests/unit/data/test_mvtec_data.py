"""MVTec loaders and the paper's augmentation on generated data, bad inputs, and real screw."""

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from expect import data_error

from vaecam.data.images import read_image, write_image
from vaecam.data.mvtec import MVTecTest, MVTecTrain
from vaecam.data.synthetic import make_mvtec_like
from vaecam.data.transforms import AugmentConfig, draw_augmentation, export_augmented, rotate
from vaecam.errors import ConfigError

CAT = "synthetic"
N_TRAIN, N_GOOD, N_DEFECT = 16, 4, 4  # per defect type; as made by the synth_mvtec_root fixture


@pytest.fixture
def mvtec_copy(synth_mvtec_root: Path, tmp_path: Path) -> Path:
    """A private copy of the generated MVTec root, for tests that break it."""
    return Path(shutil.copytree(synth_mvtec_root, tmp_path / "mvtec"))


# --- layout and items --------------------------------------------------------------------------


def test_train_images(synth_mvtec_root: Path) -> None:
    ds = MVTecTrain(synth_mvtec_root, CAT, size=64)
    assert len(ds) == N_TRAIN
    x = ds[0]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert MVTecTrain(synth_mvtec_root, CAT, size=32)[0].shape == (3, 32, 32)


def test_test_images_and_masks(synth_mvtec_root: Path) -> None:
    ds = MVTecTest(synth_mvtec_root, CAT, size=64)
    assert len(ds) == N_GOOD + 2 * N_DEFECT
    assert ds.labels.sum() == 2 * N_DEFECT
    assert {s.kind for s in ds.samples} == {"good", "patch", "scratch"}
    for i in range(len(ds)):
        image, mask, defect, stem = ds[i]
        assert image.shape == (3, 64, 64) and mask.shape == (64, 64) and mask.dtype == torch.bool
        assert stem == ds.samples[i].image.stem
        if defect == "good":
            assert not mask.any()
        else:  # the defect is painted pure white or black exactly where the mask is
            assert 0.05 < mask.float().mean() < 0.2
            painted = image[:, mask]
            assert torch.all(painted == painted[0, 0]) and painted[0, 0].item() in (0.0, 1.0)


def test_grayscale_category_becomes_rgb(tmp_path: Path) -> None:
    make_mvtec_like(tmp_path, "gray", n_train=2, n_test_good=1, n_test_defect=1, grayscale=True)
    assert read_image(tmp_path / "gray" / "train" / "good" / "000.png", "L").ndim == 2
    image = MVTecTrain(tmp_path, "gray", size=32)[0]
    assert image.shape == (3, 32, 32)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    assert MVTecTest(tmp_path, "gray", size=32)[1][0].shape == (3, 32, 32)


def test_non_image_files_ignored(mvtec_copy: Path) -> None:
    for folder in ["train/good", "test/good", "test/patch", "ground_truth/patch"]:
        (mvtec_copy / CAT / folder / ".DS_Store").write_bytes(b"\0")
        (mvtec_copy / CAT / folder / "Thumbs.db").write_bytes(b"\0")
    (mvtec_copy / CAT / "readme.txt").write_text("licence")
    assert len(MVTecTrain(mvtec_copy, CAT, size=32)) == N_TRAIN
    assert len(MVTecTest(mvtec_copy, CAT, size=32)) == N_GOOD + 2 * N_DEFECT


# --- augmentation ------------------------------------------------------------------------------


def test_augmented_items_depend_only_on_seed_and_index(synth_mvtec_root: Path) -> None:
    config = AugmentConfig(rotation=30, padding="upper-left", hflip_p=0.5)
    a = MVTecTrain(synth_mvtec_root, CAT, size=64, augment=config, num_augmented=40, seed=3)
    b = MVTecTrain(synth_mvtec_root, CAT, size=64, augment=config, num_augmented=40, seed=3)
    c = MVTecTrain(synth_mvtec_root, CAT, size=64, augment=config, num_augmented=40, seed=4)
    assert len(a) == 40
    later_first = b[7]
    assert torch.equal(a[7], later_first) and torch.equal(a[31], b[31])
    assert not torch.equal(a[7], c[7])
    assert not torch.equal(a[7], a[7 + N_TRAIN])  # same source image, other draw
    defaults = MVTecTrain(synth_mvtec_root, CAT, size=64, augment=config)
    assert len(defaults) == N_TRAIN


def test_draws_stay_in_range() -> None:
    config = AugmentConfig()
    draws = [draw_augmentation(config, seed=0, index=i) for i in range(400)]
    angles = np.array([a for a, _ in draws])
    assert angles.min() >= -30 and angles.max() <= 30 and angles.std() > 10
    assert 0.4 < np.mean([f for _, f in draws]) < 0.6


def test_flip_and_identity(synth_mvtec_root: Path) -> None:
    plain = MVTecTrain(synth_mvtec_root, CAT, size=64)
    flip = AugmentConfig(rotation=0, hflip_p=1.0)
    flipped = MVTecTrain(synth_mvtec_root, CAT, size=64, augment=flip, num_augmented=20)
    assert torch.allclose(flipped[17], plain[1].flip(-1), atol=1e-6)
    still = AugmentConfig(rotation=0, hflip_p=0.0)
    same = MVTecTrain(synth_mvtec_root, CAT, size=64, augment=still, num_augmented=3)
    assert torch.allclose(same[2], plain[2], atol=1e-6)


@pytest.mark.parametrize("padding", ["black", "upper-left"])
def test_rotation_padding(padding: str) -> None:
    image = torch.zeros(3, 32, 32)
    image[:] = torch.tensor([0.2, 0.5, 0.8])[:, None, None]
    image[:, 8:24, 8:24] = 1.0
    out = rotate(image, 45.0, padding)
    corner = out[:, 1, 1]
    expected = torch.zeros(3) if padding == "black" else torch.tensor([0.2, 0.5, 0.8])
    assert torch.allclose(corner, expected, atol=1e-6)
    assert torch.allclose(out[:, 16, 16], torch.ones(3))


def test_bad_augment_options(synth_mvtec_root: Path) -> None:
    with pytest.raises(ConfigError, match="padding must be"):
        AugmentConfig(padding="white")
    with pytest.raises(ConfigError, match="needs an augmentation config"):
        MVTecTrain(synth_mvtec_root, CAT, num_augmented=5)


def test_export_augmented(synth_mvtec_root: Path, tmp_path: Path) -> None:
    ds = MVTecTrain(synth_mvtec_root, CAT, size=64, augment=AugmentConfig(), num_augmented=5)
    paths = export_augmented(ds, tmp_path / "aug")
    assert [p.name for p in paths] == [f"{i:05d}.png" for i in range(5)]
    back = torch.from_numpy(read_image(paths[4], "RGB")).permute(2, 0, 1)
    assert torch.allclose(back, ds[4], atol=1 / 255)
    with data_error(r"folder .*aug is not empty"):
        export_augmented(ds, tmp_path / "aug")


# --- bad inputs --------------------------------------------------------------------------------


def test_missing_root(tmp_path: Path) -> None:
    with data_error(r"MVTec folder .* not found; expected layout: .*www\.mvtec\.com"):
        MVTecTrain(tmp_path / "nowhere", CAT)


def test_missing_category_lists_found_ones(synth_mvtec_root: Path) -> None:
    with data_error(r"category 'bottle' not found .*categories found: synthetic"):
        MVTecTest(synth_mvtec_root, "bottle")
    with data_error(r"is itself a category folder; pass its parent"):
        MVTecTrain(synth_mvtec_root / CAT, CAT)


def test_empty_category(mvtec_copy: Path) -> None:
    for path in (mvtec_copy / CAT / "train" / "good").iterdir():
        path.unlink()
    with data_error(r"no training images in .*train/good"):
        MVTecTrain(mvtec_copy, CAT)


def test_defect_image_without_mask(mvtec_copy: Path) -> None:
    (mvtec_copy / CAT / "ground_truth" / "scratch" / "002_mask.png").unlink()
    with data_error(r"test image .*scratch/002\.png has no mask .*scratch/002_mask\.png"):
        MVTecTest(mvtec_copy, CAT)


def test_mask_of_another_size(mvtec_copy: Path) -> None:
    write_image(
        mvtec_copy / CAT / "ground_truth" / "patch" / "001_mask.png", np.ones((32, 32), bool)
    )
    with data_error(r"001_mask\.png is \(32, 32\) pixels but its image .*is \(64, 64\)"):
        MVTecTest(mvtec_copy, CAT)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_png_names_the_file(mvtec_copy: Path, damage: str) -> None:
    bad = mvtec_copy / CAT / "train" / "good" / "003.png"
    data = bad.read_bytes()
    bad.write_bytes(b"not a png" if damage == "garbage" else data[: len(data) // 2])
    ds = MVTecTrain(mvtec_copy, CAT)
    with data_error(r"cannot read image .*003\.png .*replace or delete the file"):
        ds[3]


def test_orphan_mask_is_logged(mvtec_copy: Path, caplog) -> None:
    gt = mvtec_copy / CAT / "ground_truth" / "patch"
    shutil.copy(gt / "000_mask.png", gt / "099_mask.png")
    with caplog.at_level(logging.WARNING, logger="vaecam.data.mvtec"):
        ds = MVTecTest(mvtec_copy, CAT)
    assert len(ds) == N_GOOD + 2 * N_DEFECT
    assert "099_mask.png" in caplog.text


# --- real data ---------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_screw(shared_data: Path) -> None:
    root = shared_data / "mvtec"
    train = MVTecTrain(root, "screw")
    assert len(train) == 320 and train[0].shape == (3, 256, 256)
    test = MVTecTest(root, "screw")
    assert len(test) == 154 and test.labels.sum() == 113
    for i in (0, 60, 153):
        image, mask, defect, stem = test[i]
        assert image.shape == (3, 256, 256) and mask.shape == (256, 256)
        assert torch.equal(image[0], image[2])  # screw is grayscale, made RGB
        assert mask.any() == (defect != "good")
        assert test.samples[i].image.stem == stem
