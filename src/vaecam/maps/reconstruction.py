"""``recon-abs``, ``recon-sq``, ``ssim``: the reconstruction-error baselines.

The per-pixel error between each image and its reconstruction ``decode(mu)``, mean over
channels, exactly as :func:`vaecam.maps.reconstruction_error.reconstruction_error` computes it
(``abs``: ``|x - x_hat|``, ``squared``: ``(x - x_hat)^2``, ``ssim``: ``1 - SSIM``).
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from vaecam.maps.base import AnomalyMap, ForwardCache
from vaecam.maps.reconstruction_error import ErrorKind, reconstruction_error
from vaecam.maps.registry import register_map


class ReconstructionErrorMap(AnomalyMap):
    """The reconstruction error of kind ``kind`` from the shared forward pass."""

    kind: ClassVar[ErrorKind]

    def compute(self, cache: ForwardCache) -> Tensor:
        return reconstruction_error(cache.images, cache.recon, self.kind)


@register_map
class AbsoluteErrorMap(ReconstructionErrorMap):
    name = "recon-abs"
    summary = "absolute reconstruction error, the baseline"
    kind = "abs"


@register_map
class SquaredErrorMap(ReconstructionErrorMap):
    name = "recon-sq"
    summary = "squared reconstruction error"
    kind = "squared"


@register_map
class SSIMErrorMap(ReconstructionErrorMap):
    name = "ssim"
    summary = "1 - SSIM of the reconstruction"
    kind = "ssim"
