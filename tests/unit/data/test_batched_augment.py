"""Batched MVTec augmentation on the device against the per-item augmentation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vaecam.data.mvtec import MVTecTrain
from vaecam.data.transforms import (
    AugmentConfig,
    DeferredAugmentation,
    augment,
    augment_batch,
    draw_augmentation,
    rotate,
    rotate_batch,
)
from vaecam.errors import ConfigError

TOLERANCE = 1e-5
ANGLES = [0.0, -30.0, 29.9, 7.25, -13.0, 90.0, 180.0, 271.5, -0.0]


def _images(n: int, size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, *size, generator=torch.Generator().manual_seed(seed))


def _slow_rotation(image: np.ndarray, angle: float, fill: np.ndarray) -> np.ndarray:
    """Pixel by pixel: inverse-rotate each output centre about the image centre, bilinear with
    zeros outside, coverage of a ones image likewise, then ``m * (v - fill) + fill``."""
    channels, height, width = image.shape
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    cx, cy = (width - 1) / 2, (height - 1) / 2
    out = np.zeros_like(image)

    def pixel(row: int, col: int) -> tuple[np.ndarray, float]:
        if 0 <= row < height and 0 <= col < width:
            return image[:, row, col], 1.0
        return np.zeros(channels), 0.0

    for i in range(height):
        for j in range(width):
            x, y = j - cx, i - cy
            xs, ys = c * x - s * y + cx, s * x + c * y + cy
            j0, i0 = math.floor(xs), math.floor(ys)
            value, cover = np.zeros(channels), 0.0
            for di, dj in ((0, 0), (0, 1), (1, 0), (1, 1)):
                weight = (1 - abs(xs - (j0 + dj))) * (1 - abs(ys - (i0 + di)))
                v, m = pixel(i0 + di, j0 + dj)
                value, cover = value + weight * v, cover + weight * m
            out[:, i, j] = cover * (value - fill) + fill
    return out


@pytest.mark.parametrize("padding", ["black", "upper-left"])
def test_rotation_formula_against_a_pixel_by_pixel_reference(padding: str) -> None:
    images = _images(3, (9, 12), seed=1)
    angles = [23.0, -30.0, 5.5]
    got = rotate_batch(images, angles, padding).double().numpy()
    for k, angle in enumerate(angles):
        image = images[k].double().numpy()
        fill = image[:, 0, 0] if padding == "upper-left" else np.zeros(3)
        expected = _slow_rotation(image, angle, fill)
        np.testing.assert_allclose(got[k], expected, atol=1e-5)
    # counter-clockwise: a bright pixel right of the centre moves up (smaller row)
    dot = torch.zeros(1, 1, 21, 21)
    dot[0, 0, 10, 18] = 1.0
    row, col = divmod(int(rotate_batch(dot, [90.0]).argmax()), 21)
    assert (row, col) == (2, 10)


@pytest.mark.parametrize("size", [(64, 64), (128, 128), (40, 72)])
@pytest.mark.parametrize("padding", ["black", "upper-left"])
@pytest.mark.parametrize("batch", [1, 3, 9])
def test_rotate_batch_equals_per_item_rotate(size, padding, batch) -> None:
    images = _images(batch, size, seed=batch)
    angles = ANGLES[:batch]
    got = rotate_batch(images, angles, padding)
    expected = torch.stack([rotate(images[k], a, padding) for k, a in enumerate(angles)])
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= TOLERANCE


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("padding", ["black", "upper-left"])
def test_augment_batch_equals_per_item_augment(size: int, padding: str) -> None:
    config = AugmentConfig(rotation=30.0, padding=padding, hflip_p=0.5)
    indices = [0, 5, 17, 123, 4, 9999, 31]
    flips = [draw_augmentation(config, 7, i)[1] for i in indices]
    assert any(flips) and not all(flips)  # both branches are exercised
    images = _images(len(indices), (size, size), seed=size)
    expected = torch.stack([augment(images[k], config, 7, i) for k, i in enumerate(indices)])
    for given in (indices, torch.tensor(indices)):
        got = augment_batch(images, config, 7, given)
        assert (got - expected).abs().max() <= TOLERANCE


def test_rotate_batch_checks_its_inputs() -> None:
    with pytest.raises(ValueError, match="2 angles for a batch of 3"):
        rotate_batch(_images(3, (8, 8)), [1.0, 2.0])
    with pytest.raises(TypeError, match="float images"):
        rotate_batch(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), [1.0])


@pytest.mark.parametrize("padding", ["black", "upper-left"])
def test_deferred_augmentation_reproduces_the_augmented_dataset(synth_mvtec_root: Path,
                                                                padding: str) -> None:
    config = AugmentConfig(padding=padding)
    augmented = MVTecTrain(synth_mvtec_root, "synthetic", 64, config, num_augmented=37, seed=4)
    deferred = DeferredAugmentation(augmented)
    assert len(deferred) == 37 and deferred.seed == 4 and deferred.config == config
    assert augmented.augment == config  # the wrapped dataset is left as it was
    loader = DataLoader(deferred, batch_size=8, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    for images, indices in loader:
        got = augment_batch(images, deferred.config, deferred.seed, indices)
        expected = torch.stack([augmented[int(i)] for i in indices])
        assert (got - expected).abs().max() <= TOLERANCE


def test_deferred_augmentation_needs_an_augmenting_dataset(synth_mvtec_root: Path) -> None:
    with pytest.raises(ConfigError, match="needs a training set built with augmentation"):
        DeferredAugmentation(MVTecTrain(synth_mvtec_root, "synthetic", 64))
