"""``recon-smooth``: the absolute reconstruction error, blurred by a gaussian.

Anomalies are regions, and the raw error ``|x - x_hat|`` is speckled by every pixel the decoder
misses by a little (edges, texture, noise). Averaging the error over a neighbourhood favours
errors that cluster, a post-processing step common in reconstruction-based localisation (for
example the MVTec-AD baselines of Bergmann et al., CVPR 2019, smooth or threshold their residual
maps). ``smooth_sigma`` (pixels; default 2) is the blur; choose it on training data with
synthetic anomalies (``vaecam localize --tune``), never on test masks.
"""

from __future__ import annotations

from torch import Tensor

from vaecam.maps.base import (
    SMOOTHING_SIGMAS,
    AnomalyMap,
    ForwardCache,
    check_non_negative,
    smooth,
)
from vaecam.maps.reconstruction_error import reconstruction_error
from vaecam.maps.registry import register_map

DEFAULT_SIGMA = 2.0


@register_map
class SmoothedErrorMap(AnomalyMap):
    """``gaussian_sigma * |x - decode(mu)|``, mean over channels first."""

    name = "recon-smooth"
    summary = "blurred absolute reconstruction error"
    tuning_options = tuple({"smooth_sigma": s} for s in SMOOTHING_SIGMAS[1:])  # 0: recon-abs

    def __init__(self, smooth_sigma: float = DEFAULT_SIGMA):
        self.smooth_sigma = check_non_negative("smooth_sigma", smooth_sigma)

    def compute(self, cache: ForwardCache) -> Tensor:
        return smooth(reconstruction_error(cache.images, cache.recon, "abs"), self.smooth_sigma)
