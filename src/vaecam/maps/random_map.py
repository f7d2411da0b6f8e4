"""``random``: seeded uniform noise, a trivial reference that knows nothing about the image.

Its expected pixel AUROC is 0.5; what it reaches on a test set by chance shows how far a map
can get with no information, so every localisation run scores it beside the reconstruction
baseline. The noise of an image is drawn from a generator seeded by ``seed`` and a hash of the
image's bytes, so a map is a deterministic function of its image and ``seed``: the same in any
batch, on any device, in any run.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import Tensor, nn

from vaecam.errors import ConfigError
from vaecam.maps.base import AnomalyMap, ForwardCache
from vaecam.maps.registry import register_map


def image_seed(image: Tensor, seed: int) -> int:
    """A 63-bit generator seed from ``seed`` and the bytes of ``image`` (as float32)."""
    data = np.ascontiguousarray(image.detach().float().cpu().numpy())
    digest = hashlib.blake2b(data.tobytes(), digest_size=8, key=str(seed).encode()).digest()
    return int.from_bytes(digest, "little") >> 1


@register_map
class RandomMap(AnomalyMap):
    """Uniform noise in [0, 1) per pixel, seeded by ``seed`` and each image's content."""

    name = "random"
    summary = "seeded noise, a trivial reference"
    needs_decoder = False

    def __init__(self, seed: int = 0):
        if isinstance(seed, bool) or int(seed) != seed or seed < 0:
            raise ConfigError(f"random map seed must be an integer >= 0, got {seed}")
        self.seed = int(seed)

    def check(self, model: nn.Module) -> None:
        """Needs nothing from the model."""

    def compute(self, cache: ForwardCache) -> Tensor:
        images = cache.images
        size = images.shape[-2:]
        maps = [torch.rand(size, generator=torch.Generator().manual_seed(image_seed(x, self.seed)))
                for x in images]
        return torch.stack(maps).to(device=images.device, dtype=images.dtype)
