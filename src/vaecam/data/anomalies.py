"""Synthetic anomalies made from normal images, to choose map options without test masks.

CutPaste (Li et al., "CutPaste: self-supervised learning for anomaly detection and
localization", CVPR 2021): a rectangle cut from one normal image is pasted at another place of
another normal image. The result is an image of the right kind with a local defect whose pixels
are known: the mask marks the pasted pixels that actually changed. Everything is drawn from
``seed``, so a tuning run names exactly the images it chose on.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaecam.errors import ConfigError

CHANGE = 0.02  # a pasted pixel counts as anomalous when it moves by more than this (mean over C)


def cut_paste(images: Tensor, n: int, seed: int = 0, min_side: float = 0.1,
              max_side: float = 0.3, max_tries: int = 50) -> tuple[Tensor, Tensor]:
    """``n`` anomalous images (n, C, H, W) and their masks (n, H, W) from normal ``images``.

    Each draws a target and a source image, a rectangle with sides between ``min_side`` and
    ``max_side`` of the image's, a source position and a different target position, and pastes;
    a draw whose pasted pixels barely change the target is drawn again.
    """
    if images.dim() != 4 or len(images) < 1:
        raise ConfigError(f"cut_paste needs a (N, C, H, W) batch of normal images, got "
                          f"{tuple(images.shape)}")
    if n < 1:
        raise ConfigError(f"the number of synthetic anomalies must be at least 1, not {n}")
    gen = torch.Generator().manual_seed(seed)
    _, _, height, width = images.shape

    def draw(upper: int) -> int:
        return int(torch.randint(0, max(upper, 1), (1,), generator=gen))

    out, masks = [], []
    while len(out) < n:
        for _ in range(max_tries):
            target = images[draw(len(images))]
            source = images[draw(len(images))]
            h = max(2, round(height * (min_side + (max_side - min_side) * draw(1000) / 1000)))
            w = max(2, round(width * (min_side + (max_side - min_side) * draw(1000) / 1000)))
            sy, sx = draw(height - h + 1), draw(width - w + 1)
            ty, tx = draw(height - h + 1), draw(width - w + 1)
            if (sy, sx) == (ty, tx):
                continue
            patch = source[:, sy : sy + h, sx : sx + w]
            change = (patch - target[:, ty : ty + h, tx : tx + w]).abs().mean(dim=0) > CHANGE
            if change.float().mean() > 0.25:
                break
        anomalous = target.clone()
        anomalous[:, ty : ty + h, tx : tx + w] = patch
        mask = torch.zeros(height, width, dtype=torch.bool)
        mask[ty : ty + h, tx : tx + w] = change
        out.append(anomalous)
        masks.append(mask)
    return torch.stack(out), torch.stack(masks)
