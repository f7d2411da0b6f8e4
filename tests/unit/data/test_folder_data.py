"""The own-images folder loaders: layout, channels, resizing, mask pairing and the one-line
errors that say what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaecam.data.folder import FolderTest, FolderTrain, folder_channels
from vaecam.data.images import write_image
from vaecam.data.synthetic import make_folder_like
from vaecam.errors import DataError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_folder_like(tmp_path / "own", n_train=3, n_test_normal=2, n_test_abnormal=3,
                            size=24)


def _error(build, *fragments: str) -> str:
    with pytest.raises(DataError) as info:
        build()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_items_labels_and_masks(root):
    test = FolderTest(root, 24)
    assert len(test) == 5 and test.labels.tolist() == [False] * 2 + [True] * 3
    image, mask, kind, stem = test[3]
    assert image.shape == (3, 24, 24) and image.dtype == torch.float32
    assert kind == "abnormal" and stem == "001"
    written = np.asarray(Image.open(root / "masks" / "001.png")) > 127
    assert torch.equal(mask, torch.from_numpy(written)) and mask.any()
    assert not test[0][1].any() and test[0][2] == "normal"


def test_any_size_is_resized_and_channels_follow_the_training_images(tmp_path):
    gray = make_folder_like(tmp_path / "gray", n_train=2, size=24, grayscale=True)
    write_image(gray / "train" / "wide.png", np.zeros((20, 40)))
    assert folder_channels(gray) == 1
    assert FolderTrain(gray, 16)[0].shape == (1, 16, 16)
    assert FolderTest(gray, 16)[0][0].shape == (1, 16, 16)
    write_image(gray / "train" / "colour.png", np.zeros((20, 40, 3)))
    assert folder_channels(gray) == 3 and FolderTrain(gray, 16)[0].shape == (3, 16, 16)


def test_a_mask_pixel_above_half_its_range_is_anomalous(root):
    values = np.zeros((24, 24), np.uint8)
    values[0, :3] = [127, 128, 255]
    Image.fromarray(values, "L").save(root / "masks" / "000.png")
    mask = FolderTest(root, 24)[2][1]
    assert mask[0, :3].tolist() == [False, True, True] and mask.sum() == 2


def test_grey_rgb_mask_is_accepted_colour_mask_is_refused(root):
    grey = np.zeros((24, 24, 3), np.uint8)
    grey[5:9, 5:9] = 255
    Image.fromarray(grey, "RGB").save(root / "masks" / "000.png")
    assert FolderTest(root, 24)[2][1].sum() == 16
    grey[5:9, 5:9] = (255, 0, 0)
    Image.fromarray(grey, "RGB").save(root / "masks" / "000.png")
    _error(lambda: FolderTest(root, 24), "000.png",
           "masks must be single-channel (grayscale or binary)")


def test_missing_folders_print_the_layout(root, tmp_path):
    _error(lambda: FolderTrain(tmp_path / "nowhere", 24), "nowhere", "expected layout")
    for sub in ("test/abnormal", "test/normal"):
        for f in (root / sub).iterdir():
            f.unlink()
        (root / sub).rmdir()
        _error(lambda: FolderTest(root, 24), sub, "expected layout")


def test_no_images_and_corrupt_images(root):
    for f in (root / "train").iterdir():
        f.unlink()
    (root / "train" / "notes.txt").write_text("no image")
    _error(lambda: FolderTrain(root, 24), "no images", "train", "expected layout")
    (root / "train" / "bad.png").write_bytes(b"not a png")
    _error(lambda: FolderTrain(root, 24), "bad.png", "replace or delete")
    (root / "test" / "normal" / "broken.png").write_bytes(b"not a png")
    _error(lambda: FolderTest(root, 24, channels=3), "broken.png", "replace or delete")


def test_masks_are_paired_by_stem(root):
    (root / "masks" / "001.png").unlink()
    _error(lambda: FolderTest(root, 24), "without a mask", "001.png")
    write_image(root / "masks" / "001.png", np.zeros((24, 24), bool))
    write_image(root / "masks" / "zz.png", np.zeros((24, 24), bool))
    write_image(root / "masks" / "yy.png", np.zeros((24, 24), bool))
    _error(lambda: FolderTest(root, 24), "match no abnormal test image", "yy.png, zz.png")


def test_mask_size_must_match_its_image(root):
    write_image(root / "masks" / "002.png", np.zeros((12, 24), bool))
    _error(lambda: FolderTest(root, 24), "002.png", "(24, 12)", "(24, 24)")


def test_localisation_needs_masks(root):
    for f in (root / "masks").iterdir():
        f.unlink()
    (root / "masks").rmdir()
    assert len(FolderTrain(root, 24)) == 3  # training does not
    _error(lambda: FolderTest(root, 24), "no masks folder", "masks/<stem>.png")
