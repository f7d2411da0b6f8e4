"""Pixel-labelled anomalies made from real MNIST digits, to put a number on claim 1.

A normal digit of the trained class gets a stroke fragment pasted in: a window cropped from a
digit of another class, blended with ``max``. The ground-truth mask is the ink that was added
(pasted pixels brighter than 0.5 where the original was darker than 0.3). Fully seeded.
"""

from __future__ import annotations

import torch
from torch import Tensor

PATCH = 12
MIN_MASK_PIXELS = 12


def paste_strokes(
    normals: Tensor, donors: Tensor, n: int, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Return ``n`` anomalous images (n, 1, H, W) and their boolean masks (n, H, W)."""
    gen = torch.Generator().manual_seed(seed)
    _, _, h, w = normals.shape
    images, masks = [], []
    while len(images) < n:
        base = normals[torch.randint(len(normals), (1,), generator=gen).item()][0]
        donor = donors[torch.randint(len(donors), (1,), generator=gen).item()][0]
        dy, dx = (torch.randint(0, s - PATCH + 1, (1,), generator=gen).item() for s in (h, w))
        patch = donor[dy : dy + PATCH, dx : dx + PATCH]
        ty, tx = (torch.randint(0, s - PATCH + 1, (1,), generator=gen).item() for s in (h, w))
        region = base[ty : ty + PATCH, tx : tx + PATCH]
        added = (patch > 0.5) & (region < 0.3)
        if int(added.sum()) < MIN_MASK_PIXELS:
            continue
        image = base.clone()
        image[ty : ty + PATCH, tx : tx + PATCH] = torch.maximum(region, patch)
        mask = torch.zeros(h, w, dtype=torch.bool)
        mask[ty : ty + PATCH, tx : tx + PATCH] = added
        images.append(image[None])
        masks.append(mask)
    return torch.stack(images), torch.stack(masks)
