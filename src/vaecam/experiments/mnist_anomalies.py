"""Pixel-labelled anomalies made from real MNIST digits, to put a number on claim 1.

Three protocols, each fully seeded (the same ``seed`` gives the same images and masks):

* ``pasted``: a stroke fragment, a window cropped from a digit of another class, blended in with
  ``max``; the mask is the added ink (pasted pixels brighter than 0.5 where the original was
  darker than 0.3).
* ``erased``: the end of a stroke is erased: the digit's ink pixel furthest in a random direction
  and every pixel within :data:`ERASE_RADIUS` of it are set to 0; the mask is exactly the erased
  pixels that held ink. The anomaly is missing ink.
* ``in-digit``: a straight stroke (:data:`STROKE_LENGTH` long, :data:`STROKE_WIDTH` wide) in the
  digit's own ink intensity, drawn inside the digit's bounding box; the mask is exactly the
  stroke pixels that were not ink before.

Pasted strokes put ink where the trained class rarely has any, so even ``|x - mean training
image|`` finds them; the other two keep every change inside the digit, where ink alone does not
tell normal from anomalous. Their parameters were chosen on training digits only
(``scripts/mnist_protocol_check.py``; figures in docs/results.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from vaecam.configs.schema import MNIST_ANOMALIES
from vaecam.errors import ConfigError, DataError

PATCH = 12
MIN_MASK_PIXELS = 12
INK = 0.5  # a pixel brighter than this is ink
ERASE_RADIUS = 3.0
STROKE_LENGTH = 8.0
STROKE_WIDTH = 3.0
MIN_CHANGED_PIXELS = 8  # fewest changed pixels of an erased or in-digit anomaly
MAX_REJECTED = 200  # rejected draws per accepted one before the digits are declared unusable

Anomaly = tuple[Tensor, Tensor]  # an image (1, H, W) and its mask (H, W)
Drawn = tuple[Tensor, Tensor, Tensor]  # an anomaly and the clean digit (1, H, W) it was made of


class AnomalySet(NamedTuple):
    """Anomalous images (n, 1, H, W), their boolean masks (n, H, W) and the clean digits
    (n, 1, H, W) they were made of (what an evaluation region may be computed from)."""

    images: Tensor
    masks: Tensor
    clean: Tensor

DESCRIPTIONS = {
    "pasted": "a stroke fragment of another digit pasted in (the mask is the added ink)",
    "erased": "the end of a stroke erased (the mask is the erased ink)",
    "in-digit": "a straight stroke of the digit's own intensity drawn inside its bounding box "
                "(the mask is the new ink)",
}


def _collect(n: int, draw: Callable[[], Drawn | None], what: str) -> AnomalySet:
    """Stack ``n`` accepted draws; ``draw`` returns None for a draw it rejects."""
    images, masks, clean = [], [], []
    rejected = 0
    while len(images) < n:
        drawn = draw()
        if drawn is None:
            rejected += 1
            if rejected > MAX_REJECTED * (len(images) + 1):
                raise DataError(f"could not make {what} anomalies from these digits (too little "
                                "ink); use digits with visible strokes")
            continue
        images.append(drawn[0])
        masks.append(drawn[1])
        clean.append(drawn[2])
    return AnomalySet(torch.stack(images), torch.stack(masks), torch.stack(clean))


def _pick(pool: Tensor, gen: torch.Generator) -> Tensor:
    return pool[torch.randint(len(pool), (1,), generator=gen).item()][0]


def _uniform(gen: torch.Generator) -> float:
    return float(torch.rand(1, generator=gen))


def _grid(height: int, width: int) -> tuple[Tensor, Tensor]:
    """Row and column coordinates of every pixel (float64, so that geometry is decided in the
    same arithmetic as Python floats)."""
    return torch.meshgrid(torch.arange(height, dtype=torch.float64),
                          torch.arange(width, dtype=torch.float64), indexing="ij")


def paste_strokes(normals: Tensor, donors: Tensor, n: int, seed: int = 0) -> AnomalySet:
    """``n`` anomalous images (n, 1, H, W), their boolean masks (n, H, W) and clean digits."""
    gen = torch.Generator().manual_seed(seed)
    _, _, h, w = normals.shape

    def draw() -> Drawn | None:
        base = _pick(normals, gen)
        donor = _pick(donors, gen)
        dy, dx = (torch.randint(0, s - PATCH + 1, (1,), generator=gen).item() for s in (h, w))
        patch = donor[dy : dy + PATCH, dx : dx + PATCH]
        ty, tx = (torch.randint(0, s - PATCH + 1, (1,), generator=gen).item() for s in (h, w))
        region = base[ty : ty + PATCH, tx : tx + PATCH]
        added = (patch > 0.5) & (region < 0.3)
        if int(added.sum()) < MIN_MASK_PIXELS:
            return None
        image = base.clone()
        image[ty : ty + PATCH, tx : tx + PATCH] = torch.maximum(region, patch)
        mask = torch.zeros(h, w, dtype=torch.bool)
        mask[ty : ty + PATCH, tx : tx + PATCH] = added
        return image[None], mask, base[None]

    return _collect(n, draw, "pasted")


def erase_end(base: Tensor, angle: float, radius: float = ERASE_RADIUS) -> Anomaly:
    """``base`` (H, W) with the end of its ink in direction ``angle`` (radians; 0 points along
    columns, pi/2 along rows) erased: the ink pixel with the largest projection on that
    direction (the first in row-major order on a tie) and every pixel within ``radius`` of it
    become 0. Returns the image (1, H, W) and the erased pixels that held ink."""
    rows, cols = _grid(*base.shape)
    reach = rows * math.sin(angle) + cols * math.cos(angle)
    reach = torch.where(base > INK, reach, torch.tensor(-math.inf))
    end = int(reach.flatten().argmax())
    centre_row, centre_col = rows.flatten()[end], cols.flatten()[end]
    region = (rows - centre_row) ** 2 + (cols - centre_col) ** 2 <= radius**2
    mask = region & (base > 0)
    image = base.clone()
    image[mask] = 0.0
    return image[None], mask


def erase_strokes(normals: Tensor, n: int, seed: int = 0,
                  radius: float = ERASE_RADIUS) -> AnomalySet:
    """``n`` digits (n, 1, H, W) with the end of a stroke erased (:func:`erase_end` in a
    uniformly random direction), their masks (n, H, W) and clean digits; draws that erase
    fewer than :data:`MIN_CHANGED_PIXELS` ink pixels are drawn again."""
    gen = torch.Generator().manual_seed(seed)

    def draw() -> Drawn | None:
        base = _pick(normals, gen)
        angle = 2 * math.pi * _uniform(gen)
        if not bool((base > INK).any()):
            return None
        image, mask = erase_end(base, angle, radius)
        return (image, mask, base[None]) if int(mask.sum()) >= MIN_CHANGED_PIXELS else None

    return _collect(n, draw, "erased")


def ink_box(base: Tensor) -> tuple[int, int, int, int]:
    """First and last row, first and last column holding ink."""
    rows, cols = (base > INK).nonzero(as_tuple=True)
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())


def ink_intensity(base: Tensor) -> float:
    """The digit's own ink intensity: the median of its ink pixels (torch's lower median)."""
    return float(base[base > INK].median())


def draw_stroke(base: Tensor, start: tuple[float, float], end: tuple[float, float],
                width: float = STROKE_WIDTH) -> Anomaly:
    """``base`` (H, W) with a straight stroke from ``start`` to ``end`` (row, column): every
    pixel within ``width / 2`` of the segment, inside the digit's ink bounding box and not ink
    already, takes the digit's ink intensity. Returns the image (1, H, W) and those pixels."""
    rows, cols = _grid(*base.shape)
    (r0, c0), (r1, c1) = start, end
    dr, dc = r1 - r0, c1 - c0
    along = ((rows - r0) * dr + (cols - c0) * dc) / max(dr * dr + dc * dc, 1e-12)
    along = along.clamp(0.0, 1.0)
    distance = ((rows - r0 - along * dr) ** 2 + (cols - c0 - along * dc) ** 2).sqrt()
    top, bottom, left, right = ink_box(base)
    box = torch.zeros_like(base, dtype=torch.bool)
    box[top : bottom + 1, left : right + 1] = True
    mask = (distance <= width / 2) & box & (base <= INK)
    image = base.clone()
    image[mask] = ink_intensity(base)
    return image[None], mask


def draw_in_digit(normals: Tensor, n: int, seed: int = 0, length: float = STROKE_LENGTH,
                  width: float = STROKE_WIDTH) -> AnomalySet:
    """``n`` digits (n, 1, H, W) with a stroke of their own intensity inside their bounding box
    (:func:`draw_stroke` from a uniform point of the box in a uniform direction; a draw whose
    end leaves the box or that adds fewer than :data:`MIN_CHANGED_PIXELS` pixels is drawn again),
    their masks (n, H, W) and clean digits."""
    gen = torch.Generator().manual_seed(seed)

    def draw() -> Drawn | None:
        base = _pick(normals, gen)
        u_row, u_col, u_angle = _uniform(gen), _uniform(gen), _uniform(gen)
        if not bool((base > INK).any()):
            return None
        top, bottom, left, right = ink_box(base)
        start = (top + u_row * (bottom - top), left + u_col * (right - left))
        angle = 2 * math.pi * u_angle
        end = (start[0] + length * math.sin(angle), start[1] + length * math.cos(angle))
        if not (top <= end[0] <= bottom and left <= end[1] <= right):
            return None
        image, mask = draw_stroke(base, start, end, width)
        return (image, mask, base[None]) if int(mask.sum()) >= MIN_CHANGED_PIXELS else None

    return _collect(n, draw, "in-digit")


def make_anomalies(protocol: str, normals: Tensor, others: Tensor, n: int, seed: int = 0
                   ) -> AnomalySet:
    """``n`` anomalous digits of ``protocol`` (one of :data:`MNIST_ANOMALIES`) made from
    ``normals`` (digits of the trained class; ``others``: digits of the other classes, the
    donors of pasted strokes), with their masks and the clean digits they were made of."""
    if protocol == "pasted":
        return paste_strokes(normals, others, n, seed)
    if protocol == "erased":
        return erase_strokes(normals, n, seed)
    if protocol == "in-digit":
        return draw_in_digit(normals, n, seed)
    raise ConfigError(f"unknown MNIST anomaly protocol '{protocol}'; choose one of: "
                    f"{', '.join(MNIST_ANOMALIES)}")
