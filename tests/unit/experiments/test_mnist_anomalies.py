"""The MNIST anomaly protocols: erased stroke ends and in-digit strokes against slow pixel-by-pixel
references, the invariants of their masks, and determinism per seed."""

from __future__ import annotations

import math

import pytest
import torch

from vaecam.configs.schema import MNIST_ANOMALIES, OPTIONS
from vaecam.data.mnist import load_digits, one_class_split
from vaecam.errors import ConfigError, DataError
from vaecam.experiments import mnist_anomalies as protocols
from vaecam.experiments.mnist import DigitAnomalies
from vaecam.experiments.mnist_anomalies import (
    INK,
    draw_in_digit,
    draw_stroke,
    erase_end,
    erase_strokes,
    make_anomalies,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits("bundled")


@pytest.fixture(scope="module")
def threes(digits):
    return one_class_split(digits, 3, seed=0).val


def erase_reference(base: torch.Tensor, angle: float, radius: float):
    """Pixel by pixel: the ink pixel furthest along ``angle`` (first in row-major order on a
    tie), then every pixel within ``radius`` of it set to 0."""
    height, width = base.shape
    best = None
    for r in range(height):
        for c in range(width):
            if base[r, c] > INK:
                reach = r * math.sin(angle) + c * math.cos(angle)
                if best is None or reach > best[0]:
                    best = (reach, r, c)
    image, mask = base.clone(), torch.zeros(height, width, dtype=torch.bool)
    for r in range(height):
        for c in range(width):
            if (r - best[1]) ** 2 + (c - best[2]) ** 2 <= radius**2:
                mask[r, c] = bool(base[r, c] > 0)
                image[r, c] = 0.0
    return image, mask


def stroke_reference(base: torch.Tensor, start, end, width: float):
    """Pixel by pixel: distance to the segment (projection clamped to it), inside the ink box,
    not ink; those pixels take the lower median of the digit's ink values (a segment of length
    0 is a dot)."""
    height, wide = base.shape
    ink = [(r, c) for r in range(height) for c in range(wide) if base[r, c] > INK]
    values = sorted(float(base[r, c]) for r, c in ink)
    intensity = values[(len(values) - 1) // 2]
    top, bottom = min(r for r, _ in ink), max(r for r, _ in ink)
    left, right = min(c for _, c in ink), max(c for _, c in ink)
    (r0, c0), (r1, c1) = start, end
    dr, dc = r1 - r0, c1 - c0
    image, mask = base.clone(), torch.zeros(height, wide, dtype=torch.bool)
    for r in range(top, bottom + 1):
        for c in range(left, right + 1):
            length2 = dr * dr + dc * dc
            t = min(max(((r - r0) * dr + (c - c0) * dc) / length2, 0.0), 1.0) if length2 else 0.0
            distance = math.sqrt((r - r0 - t * dr) ** 2 + (c - c0 - t * dc) ** 2)
            if distance <= width / 2 and base[r, c] <= INK:
                mask[r, c] = True
                image[r, c] = intensity
    return image, mask, intensity


@pytest.mark.parametrize("index,angle,radius", [(0, 0.0, 3.0), (1, 1.3, 2.5), (2, 3.0, 4.0),
                                                (3, 4.7, 3.0), (4, math.pi / 2, 1.5)])
def test_erase_end_matches_the_pixel_by_pixel_reference(threes, index, angle, radius):
    base = threes[index, 0]
    image, mask = erase_end(base, angle, radius)
    expected_image, expected_mask = erase_reference(base, angle, radius)
    assert torch.equal(image[0], expected_image) and torch.equal(mask, expected_mask)


@pytest.mark.parametrize("index,start,end,width", [
    (0, (8.0, 9.0), (14.0, 13.5), 2.0), (1, (10.2, 7.7), (10.2, 15.1), 3.0),
    (2, (20.0, 18.0), (12.5, 9.0), 1.5), (5, (6.0, 12.0), (6.0, 12.0), 2.0)])
def test_draw_stroke_matches_the_pixel_by_pixel_reference(threes, index, start, end, width):
    base = threes[index, 0]
    image, mask = draw_stroke(base, start, end, width)
    expected_image, expected_mask, intensity = stroke_reference(base, start, end, width)
    assert torch.equal(mask, expected_mask) and torch.equal(image[0], expected_image)
    assert protocols.ink_intensity(base) == intensity


@pytest.mark.parametrize("seed", range(6))
def test_erased_masks_are_exactly_the_erased_ink(threes, seed):
    base = threes[seed : seed + 1]  # a pool of one digit: the base image is known
    image, mask, clean = (t[0] for t in erase_strokes(base, 1, seed=seed))
    assert torch.equal(clean, base[0])
    changed = image[0] != base[0, 0]
    assert torch.equal(mask, changed)
    assert bool((base[0, 0][mask] > 0).all()) and bool((image[0][mask] == 0).all())
    assert bool((base[0, 0][mask] > INK).any())  # a stroke, not only its faint rim
    assert int(mask.sum()) >= protocols.MIN_CHANGED_PIXELS


@pytest.mark.parametrize("seed", range(6))
def test_in_digit_strokes_lie_in_the_box_with_the_digits_intensity(threes, seed):
    base = threes[seed : seed + 1]
    image, mask, clean = (t[0] for t in draw_in_digit(base, 1, seed=seed))
    assert torch.equal(clean, base[0])
    changed = image[0] != base[0, 0]
    assert torch.equal(mask, changed)
    rows, cols = mask.nonzero(as_tuple=True)
    top, bottom, left, right = protocols.ink_box(base[0, 0])
    assert top <= int(rows.min()) and int(rows.max()) <= bottom
    assert left <= int(cols.min()) and int(cols.max()) <= right
    assert bool((base[0, 0][mask] <= INK).all())  # only pixels that were not ink
    ink = base[0, 0][base[0, 0] > INK]
    assert bool((image[0][mask] == ink.median()).all())
    assert int(mask.sum()) >= protocols.MIN_CHANGED_PIXELS


@pytest.mark.parametrize("protocol", MNIST_ANOMALIES)
def test_same_seed_same_anomalies_other_seed_others(digits, threes, protocol):
    others = one_class_split(digits, 3, seed=0).others.images
    first = make_anomalies(protocol, threes, others, 20, seed=4)
    again = make_anomalies(protocol, threes, others, 20, seed=4)
    other = make_anomalies(protocol, threes, others, 20, seed=5)
    assert first[0].shape == (20, 1, 28, 28) and first[1].shape == (20, 28, 28)
    assert first[1].dtype == torch.bool and bool(first[1].flatten(1).any(dim=1).all())
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


def test_the_test_set_names_its_protocol_and_adds_the_clean_digits(digits):
    data = DigitAnomalies(digits, 1, 30, "erased")
    assert len(data) == 30 + 50 and int(data.labels.sum()) == 30
    image, mask, kind, index = data[0]
    assert kind == "erased" and bool(mask.any()) and index == 0
    assert data[30][2] == "clean" and not bool(data[30][1].any())


def test_protocol_names_and_errors():
    assert set(protocols.DESCRIPTIONS) == set(MNIST_ANOMALIES)
    assert OPTIONS["anomaly"].parse("in-digit") == "in-digit"
    with pytest.raises(ValueError, match="one of pasted, erased, in-digit"):
        OPTIONS["anomaly"].parse("scribble")
    with pytest.raises(ConfigError, match="unknown MNIST anomaly protocol 'scribble'"):
        make_anomalies("scribble", torch.zeros(1, 1, 28, 28), torch.zeros(1, 1, 28, 28), 1)
    with pytest.raises(DataError, match="too little ink"):
        erase_strokes(torch.zeros(2, 1, 28, 28), 1)
