"""Mask files: thresholded at half their value range, lossy formats refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vaecam.data.images import read_mask
from vaecam.errors import DataError

# A row of grey levels straddling the half-way point of each bit depth.
LEVELS_8 = np.array([[0, 1, 100, 127, 128, 200, 255]], dtype=np.uint8)
EXPECTED_8 = np.array([[False, False, False, False, True, True, True]])


def test_8bit_masks_threshold_at_128(tmp_path):
    Image.fromarray(LEVELS_8, "L").save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), EXPECTED_8)


def test_binary_0_1_and_1bit_masks(tmp_path):
    ones = np.array([[0, 1, 1, 0]], dtype=np.uint8)
    Image.fromarray(ones, "L").save(tmp_path / "01.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "01.png"), ones.astype(bool))
    Image.fromarray(ones.astype(bool)).save(tmp_path / "1bit.png")  # Pillow mode "1"
    np.testing.assert_array_equal(read_mask(tmp_path / "1bit.png"), ones.astype(bool))


def test_16bit_masks_threshold_at_half_range(tmp_path):
    values = np.array([[0, 30000, 32767, 33000, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "m16.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m16.png"),
                                  [[False, False, False, True, True]])


def test_colour_masks_are_anomalous_where_any_channel_reaches_half_range(tmp_path):
    rgb = np.zeros((1, 6, 3), dtype=np.uint8)
    rgb[0, 1] = (255, 255, 255)
    rgb[0, 2] = (40, 40, 40)  # dark grey: below half range, not an anomaly
    rgb[0, 3] = (255, 0, 0)  # pure red: luminance 76, yet an anomaly
    rgb[0, 4] = (0, 0, 200)
    rgb[0, 5] = (100, 100, 0)
    expected = [[False, True, False, True, True, False]]
    Image.fromarray(rgb, "RGB").save(tmp_path / "c.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "c.png"), expected)
    rgba = np.dstack([rgb, np.full((1, 6), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "c4.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "c4.png"), expected)
    Image.fromarray(rgb, "RGB").quantize(8).save(tmp_path / "p.png")  # a palette image
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), expected)


def test_jpeg_masks_are_refused_by_name_and_by_content(tmp_path):
    Image.fromarray(LEVELS_8, "L").save(tmp_path / "m.jpg")
    with pytest.raises(DataError, match="JPEG, a lossy format"):
        read_mask(tmp_path / "m.jpg")
    Image.fromarray(LEVELS_8, "L").save(tmp_path / "disguised.png", format="JPEG")
    with pytest.raises(DataError, match="holds JPEG data"):
        read_mask(tmp_path / "disguised.png")


def test_resize_is_nearest_neighbour(tmp_path):
    block = np.zeros((4, 4), dtype=np.uint8)
    block[:2, :2] = 255
    Image.fromarray(block, "L").save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "b.png", size=2),
                                  [[True, False], [False, False]])
