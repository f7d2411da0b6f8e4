"""Tensor transforms of images and masks: the paper's MVTec augmentation and mask downscaling.

Augmentation (Liu et al., CVPR 2020, MVTec-AD): after resizing to 256, each training image is
rotated by a random angle in [-30, 30] degrees and flipped horizontally with p = 0.5. Augmented
images are made on the fly: item ``i`` depends only on ``(seed, i)``, so a run is reproducible
without writing thousands of PNGs (:func:`export_augmented` writes them when asked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from vaecam.data.images import require_empty_dir, write_image
from vaecam.errors import ConfigError

Padding = Literal["black", "upper-left"]


@dataclass(frozen=True)
class AugmentConfig:
    """Random rotation in [-rotation, rotation] degrees, then horizontal flip with ``hflip_p``.

    ``padding`` fills the corners uncovered by the rotation: ``"black"`` with zeros,
    ``"upper-left"`` with the colour of the image's upper-left pixel (the background, for most
    MVTec objects).
    """

    rotation: float = 30.0
    padding: Padding = "black"
    hflip_p: float = 0.5

    def __post_init__(self) -> None:
        if self.padding not in ("black", "upper-left"):
            raise ConfigError(
                f"augmentation padding must be 'black' or 'upper-left', not {self.padding!r}"
            )
        if self.rotation < 0:
            raise ConfigError(f"augmentation rotation must be >= 0 degrees, not {self.rotation}")
        if not 0.0 <= self.hflip_p <= 1.0:
            raise ConfigError(f"augmentation hflip_p must be in [0, 1], not {self.hflip_p}")


def rotate(image: Tensor, angle: float, padding: Padding = "black") -> Tensor:
    """Rotate a (C, H, W) image counter-clockwise by ``angle`` degrees, keeping its size."""
    if padding == "black":
        fill = [0.0] * image.shape[0]
    else:
        fill = image[:, 0, 0].tolist()
    return TF.rotate(image, angle, interpolation=InterpolationMode.BILINEAR, fill=fill)


def draw_augmentation(config: AugmentConfig, seed: int, index: int) -> tuple[float, bool]:
    """The (angle, flip) of augmented item ``index``: a deterministic function of (seed, index)."""
    rng = np.random.default_rng((seed, index))
    angle = float(rng.uniform(-config.rotation, config.rotation))
    flip = bool(rng.random() < config.hflip_p)
    return angle, flip


def augment(image: Tensor, config: AugmentConfig, seed: int, index: int) -> Tensor:
    """Apply the rotation and flip drawn for ``(seed, index)`` to a (C, H, W) image."""
    angle, flip = draw_augmentation(config, seed, index)
    out = rotate(image, angle, config.padding)
    return TF.horizontal_flip(out) if flip else out


def export_augmented(dataset: Sequence[Tensor], out_dir: Path) -> list[Path]:
    """Write every item of ``dataset`` (a (C, H, W) tensor in [0, 1]) as ``out_dir/NNNNN.png``.

    For inspecting or sharing an augmented training set; training itself never needs the files.
    ``out_dir`` must be new or empty.
    """
    out_dir = Path(out_dir)
    require_empty_dir(out_dir, "choose a new or empty folder for the augmented images")
    width = max(5, len(str(len(dataset) - 1)))
    paths = []
    for i in range(len(dataset)):
        image = dataset[i]
        arr = image.permute(1, 2, 0).numpy()
        path = out_dir / f"{i:0{width}d}.png"
        write_image(path, arr[:, :, 0] if arr.shape[2] == 1 else arr)
        paths.append(path)
    return paths


def downscale_masks(
    masks: Tensor, height: int, width: int, rule: Literal["majority", "any"] = "majority"
) -> Tensor:
    """Reduce bool masks (..., H, W) to (..., height, width) for the ``downscale-masks`` mode.

    Each output cell covers an area of the input (area interpolation). ``"majority"`` (default)
    marks a cell anomalous iff at least half of that area is anomalous, so that the low-resolution
    label says what most of the cell shows; ``"any"`` marks it iff any pixel in it is anomalous,
    which keeps anomalies smaller than a cell.
    """
    if rule not in ("majority", "any"):
        raise ConfigError(f"mask downscaling rule must be 'majority' or 'any', not {rule!r}")
    lead = masks.shape[:-2]
    flat = masks.reshape(-1, 1, *masks.shape[-2:]).float()
    if rule == "majority":
        out = F.adaptive_avg_pool2d(flat, (height, width)) >= 0.5
    else:
        out = F.adaptive_max_pool2d(flat, (height, width)) > 0
    return out.reshape(*lead, height, width)
