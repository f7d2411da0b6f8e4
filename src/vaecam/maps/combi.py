"""``combi``: reconstruction error times the smoothed, normalised KL gradient (Zimmerer et al.).

Zimmerer et al., "Unsupervised anomaly localization using variational auto-encoders" (MICCAI
2019), found their best pixel score in the product of the reconstruction error and the
gradient of the KL term with respect to the input::

    combi = error(x, x_hat) * smooth(normalise(|d KL / d x|))

What the authors normalise (their code, MIC-DKFZ/vae-anomaly-experiments, ``brats_script.py``,
``test_pixel``): only the KL-gradient factor, min-max rescaled to [0, 1] over the whole
evaluated batch, then smoothed (gaussian, sigma 3, 7x7 kernel); the reconstruction factor is
the raw pixel-wise negative log-likelihood of a unit-variance gaussian decoder,
``(x - x_hat)^2 / 2 + log(2 pi) / 2``. (Their additive variant min-max normalises both factors
over the whole test set.)

vaecam's choices, in the same order (normalise, smooth, multiply):

* ``normalize="image"`` (default): min-max of the KL-gradient factor per image. The authors'
  batch-wide min-max makes an image's map depend on the other images of its batch, which
  pixel AUROC pooled over a stream of batches would score as noise; per image keeps each map a
  function of its image alone and the factor in [0, 1] as theirs. ``"batch"`` reproduces their
  code, ``"none"`` keeps the raw gradient.
* The reconstruction factor is not normalised (as theirs): it carries the scale that ranks
  pixels across images. ``error`` is ``squared`` by default (their gaussian likelihood up to
  the factor 1/2), or ``abs`` / ``ssim``. The likelihood's additive constant is dropped: it is
  not an error (a perfectly reconstructed pixel would score by its KL gradient alone).
* ``smooth_sigma`` (default 3, their sigma; ``0`` = none) blurs the normalised factor with
  :func:`vaecam.maps.reconstruction_error.gaussian_filter`.

The KL gradient comes from the shared forward pass (``z = mu``, one backward through the
encoder), see :mod:`vaecam.maps.gradients`.
"""

from __future__ import annotations

from torch import Tensor

from vaecam.errors import ConfigError
from vaecam.maps.base import (
    SMOOTHING_SIGMAS,
    AnomalyMap,
    ForwardCache,
    GradientTerm,
    check_non_negative,
    min_max,
    smooth,
)
from vaecam.maps.gradients import DEFAULT_SIGMA
from vaecam.maps.reconstruction_error import ERROR_KINDS, ErrorKind, reconstruction_error
from vaecam.maps.registry import register_map

NORMALIZATIONS = ("image", "batch", "none")


@register_map
class CombiMap(AnomalyMap):
    """Reconstruction error x smoothed min-max-normalised ``|d KL / d x|``."""

    name = "combi"
    summary = "reconstruction error x smoothed KL gradient"
    needs_loss = True
    reads_latent = True
    tuning_options = tuple({"smooth_sigma": s} for s in SMOOTHING_SIGMAS)

    def __init__(
        self,
        error: ErrorKind = "squared",
        smooth_sigma: float = DEFAULT_SIGMA,
        normalize: str = "image",
    ):
        if error not in ERROR_KINDS:
            raise ConfigError(f"combi error must be one of {', '.join(ERROR_KINDS)}, not "
                              f"'{error}'")
        if normalize not in NORMALIZATIONS:
            raise ConfigError(f"combi normalize must be one of {', '.join(NORMALIZATIONS)}, "
                              f"not '{normalize}'")
        self.error = error
        self.smooth_sigma = check_non_negative("smooth_sigma", smooth_sigma)
        self.normalize = normalize

    @property
    def input_gradients(self) -> frozenset[GradientTerm]:
        return frozenset({"kl"})

    def compute(self, cache: ForwardCache) -> Tensor:
        weight = cache.input_gradient("kl").abs().mean(dim=1)
        if self.normalize != "none":
            weight = min_max(weight, "image" if self.normalize == "image" else "batch")
        weight = smooth(weight, self.smooth_sigma)
        return reconstruction_error(cache.images, cache.recon, self.error) * weight
