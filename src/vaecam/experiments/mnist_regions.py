"""Evaluation regions of the MNIST localisation protocols: which pixels the pixel metrics score.

* ``image``: every pixel of the 28 x 28 image (the default of ``pasted``).
* ``digit-box``: the bounding box of the clean digit's ink (pixels brighter than
  :data:`~vaecam.experiments.mnist_anomalies.INK`, the protocols' own ink threshold), grown by
  :data:`BOX_MARGIN` pixels on every side and clipped to the image (the default of ``erased``
  and ``in-digit``).

Why: the background (about 80-90% of a digit image) is never anomalous and lies far from the
mean training image's ink, so over the whole image even ``|x - mean training image|`` ranks
most normal pixels below any change inside the digit. Inside the digit's box only the question
the harder protocols ask is left: which pixels of the digit are wrong.

The region is fixed by the clean digit alone (for an anomalous image, the digit before the
anomaly was made; for a clean image, itself): never by a test mask, and the same for every map.
In-digit strokes stay inside the ink box by construction. Erased pixels lie within
:data:`~vaecam.experiments.mnist_anomalies.ERASE_RADIUS` of an ink pixel, but beyond the box
only the faint anti-aliased rim (ink <= 0.5) can be erased: on the training halves of digits 1
and 3 (``scripts/mnist_protocol_check.py``, 200 anomalies per protocol and digit) a margin of 1
pixel already holds every erased and in-digit pixel; :data:`BOX_MARGIN` keeps one pixel of
slack.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vaecam.configs.schema import MNIST_REGIONS
from vaecam.errors import ConfigError
from vaecam.experiments.mnist_anomalies import INK

BOX_MARGIN = 2  # pixels added around the clean digit's ink box
DEFAULT_REGION = {"pasted": "image", "erased": "digit-box", "in-digit": "digit-box"}

DESCRIPTIONS = {
    "image": "every pixel of the image",
    "digit-box": f"the clean digit's ink bounding box (pixels > {INK:g}) grown by {BOX_MARGIN} "
                 "pixels; pixels outside it are not scored",
}


def _unknown(name: str) -> ConfigError:
    return ConfigError(f"unknown evaluation region '{name}'; choose one of: "
                       f"{', '.join(MNIST_REGIONS)}")


def region_name(options: dict[str, Any], protocol: str) -> str:
    """The region asked for in ``options`` (``region``), else the protocol's default."""
    name = str(options.get("region") or DEFAULT_REGION[protocol])
    if name not in MNIST_REGIONS:
        raise _unknown(name)
    return name


def digit_box(clean: Tensor, margin: int = BOX_MARGIN, threshold: float = INK) -> Tensor:
    """(N, H, W) bool: each clean digit's (N, 1, H, W) ink bounding box (pixels > ``threshold``)
    grown by ``margin`` pixels and clipped to the image; an image without ink gets every
    pixel."""
    ink = clean[:, 0] > threshold
    n, height, width = ink.shape
    rows = torch.arange(height)[None, :, None]
    cols = torch.arange(width)[None, None, :]
    has_ink = ink.flatten(1).any(dim=1)
    any_row, any_col = ink.any(dim=2), ink.any(dim=1)
    # first / last index holding ink; an empty image spans everything
    top = torch.where(has_ink, any_row.float().argmax(dim=1), 0)
    bottom = torch.where(has_ink, height - 1 - any_row.flip(1).float().argmax(dim=1), height - 1)
    left = torch.where(has_ink, any_col.float().argmax(dim=1), 0)
    right = torch.where(has_ink, width - 1 - any_col.flip(1).float().argmax(dim=1), width - 1)
    return ((rows >= (top - margin)[:, None, None]) & (rows <= (bottom + margin)[:, None, None])
            & (cols >= (left - margin)[:, None, None]) & (cols <= (right + margin)[:, None, None]))


def evaluation_region(name: str, clean: Tensor) -> Tensor | None:
    """The (N, H, W) region ``name`` of the clean digits ``clean`` (N, 1, H, W); None for
    ``image`` (every pixel)."""
    if name == "image":
        return None
    if name == "digit-box":
        return digit_box(clean)
    raise _unknown(name)
