"""The attention engine: Grad-CAM maps on a VAE's latent space for any encoder.

Knows nothing about datasets or training. Entry points: :class:`AttentionExplainer` and
:func:`explain`.
"""

from vaecam.attention.activations import ACTIVATIONS
from vaecam.attention.engine import GRAD_NORMS, METHODS, AttentionExplainer, explain
from vaecam.attention.hooks import spatial_layer_names
from vaecam.attention.latent_stats import LatentStats

__all__ = [
    "ACTIVATIONS",
    "GRAD_NORMS",
    "METHODS",
    "AttentionExplainer",
    "LatentStats",
    "explain",
    "spatial_layer_names",
]
