"""``grad-elbo``, ``grad-kl``, ``grad-recon``: input gradients of the negative ELBO and its terms.

Zimmerer et al., "Unsupervised anomaly localization using variational auto-encoders" (MICCAI
2019), score a pixel by how strongly the loss reacts to it: ``|d L / d x|`` with ``L`` the
negative ELBO (``grad-elbo``), its KL term ``KL(q(z|x) || N(0, I))`` (``grad-kl``) or its
reconstruction term, the model's own ``reconstruction_loss`` (``grad-recon``).

* ``z = mu`` (deterministic, eval mode): maps do not depend on a random draw. The authors'
  code also evaluates with ``z = mu`` (their VAE samples only in training mode).
* Per-sample terms are summed over the batch before differentiating, so an image's map does
  not depend on the batch it is in (the authors average over the batch, which only rescales).
* Channels: the mean of ``|gradient|`` over channels, as the reconstruction baselines reduce
  their error maps.
* ``smooth_sigma``: a gaussian blur of the map (``0`` = none). The authors' code smooths every
  gradient map with a gaussian of standard deviation 3 (a 7x7 kernel, zero padding); vaecam uses
  the same sigma by default with :func:`vaecam.maps.reconstruction_error.gaussian_filter` (a full
  scipy-style kernel, mirrored borders).

All three come from the shared forward pass: one forward, then one backward through the
encoder for ``grad-kl`` alone, one through the whole VAE for ``grad-elbo`` alone, or both
backward passes (KL term and reconstruction term) when the maps asked for need both.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from vaecam.maps.base import (
    SMOOTHING_SIGMAS,
    AnomalyMap,
    ForwardCache,
    GradientTerm,
    check_non_negative,
    smooth,
)
from vaecam.maps.registry import register_map

DEFAULT_SIGMA = 3.0


class InputGradientMap(AnomalyMap):
    """``|d term / d x|``, mean over channels, optionally smoothed."""

    term: ClassVar[GradientTerm]
    needs_loss = True
    tuning_options = tuple({"smooth_sigma": s} for s in SMOOTHING_SIGMAS)

    def __init__(self, smooth_sigma: float = DEFAULT_SIGMA):
        self.smooth_sigma = check_non_negative("smooth_sigma", smooth_sigma)

    @property
    def input_gradients(self) -> frozenset[GradientTerm]:
        return frozenset({self.term})

    def compute(self, cache: ForwardCache) -> Tensor:
        return smooth(cache.input_gradient(self.term).abs().mean(dim=1), self.smooth_sigma)


@register_map
class ELBOGradientMap(InputGradientMap):
    name = "grad-elbo"
    summary = "input gradient of the negative ELBO"
    # not reads_latent: the KL part is negligible beside the reconstruction term (grad-elbo and
    # grad-recon score alike on a collapsed Ped2 model)
    term = "elbo"


@register_map
class KLGradientMap(InputGradientMap):
    name = "grad-kl"
    summary = "input gradient of the KL term"
    term = "kl"
    reads_latent = True


@register_map
class ReconstructionGradientMap(InputGradientMap):
    name = "grad-recon"
    summary = "input gradient of the reconstruction term"
    term = "recon"
