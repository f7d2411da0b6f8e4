"""Tensor transforms of images and masks: the paper's MVTec augmentation and mask downscaling.

Augmentation (Liu et al., CVPR 2020, MVTec-AD): after resizing to 256, each training image is
rotated by a random angle in [-30, 30] degrees and flipped horizontally with p = 0.5. Augmented
images are made on the fly: item ``i`` depends only on ``(seed, i)``, so a run is reproducible
without writing thousands of PNGs (:func:`export_augmented` writes them when asked).

:func:`augment` works on one image (in a ``Dataset``, on the CPU); :func:`augment_batch` applies
the same draws to a whole batch with one affine sampling grid (one batched matmul) and one
``grid_sample``, on the batch's device, equal to :func:`augment` within float rounding (it follows
torchvision's tensor ``rotate``: the inverse rotation about the image centre computed with the
same arithmetic, bilinear sampling with zero padding, and the fill blended in through a sampled
mask channel). :class:`DeferredAugmentation` gives the un-augmented images and
their item indices for that: the ``DataLoader`` then only decodes, the accelerator augments.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset
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


def _rotation_grid(radians: Sequence[float], height: int, width: int, dtype: torch.dtype,
                   device: torch.device) -> Tensor:
    """Sampling grids (B, H, W, 2) of counter-clockwise rotations about the image centre.

    Output pixel centres in pixel units relative to the centre, ``(x, y, 1)`` with x right and
    y down, go through the inverse rotation ``[[c, -s, 0], [s, c, 0]]`` and are divided by half
    the image size into grid_sample's [-1, 1] coordinates (``align_corners=False``). This is the
    arithmetic of torchvision's tensor rotation, in the same order and precision, so the grids
    agree with it to the last bit.
    """
    xs = torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, width, device=device)
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, height, device=device)
    base = torch.ones(1, height, width, 3, dtype=dtype, device=device)
    base[..., 0] = xs
    base[..., 1] = ys[:, None]
    inverse = [[math.cos(r), -math.sin(r), 0.0, math.sin(r), math.cos(r), 0.0] for r in radians]
    theta = torch.tensor(inverse, dtype=dtype, device=device).view(-1, 2, 3)
    scale = torch.tensor([0.5 * width, 0.5 * height], dtype=dtype, device=device)
    rows = base.view(1, height * width, 3).expand(len(radians), -1, -1)
    return torch.bmm(rows, theta.transpose(1, 2) / scale).view(-1, height, width, 2)


def rotate_batch(images: Tensor, angles: Sequence[float], padding: Padding = "black") -> Tensor:
    """Rotate each (C, H, W) image of a float batch counter-clockwise by its angle in degrees.

    Equals :func:`rotate` per image (torchvision's tensor rotation) within float rounding, in one
    ``grid_sample`` for the batch: bilinear sampling with zero padding on the grid of
    :func:`_rotation_grid`; a channel of ones sampled alike gives the coverage ``m`` and the
    result is ``m * (sample - fill) + fill``, with fill 0 (``black``) or each image's upper-left
    pixel (``upper-left``).
    """
    if not images.is_floating_point():
        raise TypeError(f"rotate_batch needs float images, got {images.dtype}")
    batch, channels, height, width = images.shape
    if len(angles) != batch:
        raise ValueError(f"{len(angles)} angles for a batch of {batch} images")
    radians = [math.radians(a % 360.0) for a in angles]
    grid = _rotation_grid(radians, height, width, images.dtype, images.device)
    ones = torch.ones_like(images[:, :1])
    sampled = F.grid_sample(torch.cat([images, ones], dim=1), grid, mode="bilinear",
                            padding_mode="zeros", align_corners=False)
    rotated, coverage = sampled[:, :channels], sampled[:, channels:]
    fill = images[:, :, :1, :1]
    if padding == "black":
        fill = torch.zeros_like(fill)
    return (rotated - fill) * coverage + fill


def augment_batch(images: Tensor, config: AugmentConfig, seed: int,
                  indices: Tensor | Sequence[int]) -> Tensor:
    """:func:`augment` of each image of a float batch (B, C, H, W) as item ``indices[b]``.

    Same draws (:func:`draw_augmentation` of ``(seed, index)``), same rotation and fill, same
    flip; one grid sample for the whole batch on its own device.
    """
    index_list = indices.tolist() if isinstance(indices, Tensor) else list(indices)
    draws = [draw_augmentation(config, seed, int(i)) for i in index_list]
    rotated = rotate_batch(images, [angle for angle, _ in draws], config.padding)
    flips = torch.tensor([flip for _, flip in draws], device=images.device)
    return torch.where(flips.view(-1, 1, 1, 1), rotated.flip(-1), rotated)


class DeferredAugmentation(Dataset):
    """The items of an augmenting dataset as (un-augmented image, item index), for the device.

    ``dataset`` is one whose item ``i`` is ``augment(plain_i, dataset.augment, dataset.seed, i)``
    (:class:`vaecam.data.mvtec.MVTecTrain` with ``augment``): this wrapper reads the same items
    with augmentation switched off, so that ``augment_batch(images, self.config, self.seed,
    indices)`` on the device gives what ``dataset`` would have (within float rounding).
    """

    def __init__(self, dataset: Any) -> None:
        config = getattr(dataset, "augment", None)
        if not isinstance(config, AugmentConfig):
            raise ConfigError("device augmentation needs a training set built with augmentation")
        self.config: AugmentConfig = config
        self.seed: int = int(dataset.seed)
        self.plain = copy.copy(dataset)
        self.plain.augment = None

    def __len__(self) -> int:
        return len(self.plain)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.plain[index], index


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
