"""The attention engine: Grad-CAM maps on a VAE's latent space for any encoder.

Knows nothing about datasets or training. Entry points: :class:`AttentionExplainer`,
:func:`explain` and the targets of :mod:`vaecam.attention.targets`.
"""

from vaecam.attention.activations import ACTIVATION_ORDERS, ACTIVATIONS
from vaecam.attention.encoding import PosteriorMean
from vaecam.attention.engine import GRAD_NORMS, METHODS, AttentionExplainer, explain
from vaecam.attention.hooks import encoder_layer_names, spatial_layer_names
from vaecam.attention.latent_layout import LatentLayout
from vaecam.attention.latent_stats import LatentStats
from vaecam.attention.targets import (
    DistanceToMean,
    LatentDirection,
    NormalDifference,
    PosteriorTarget,
    SumOfMeans,
)

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_ORDERS",
    "GRAD_NORMS",
    "METHODS",
    "AttentionExplainer",
    "DistanceToMean",
    "LatentDirection",
    "LatentLayout",
    "LatentStats",
    "NormalDifference",
    "PosteriorMean",
    "PosteriorTarget",
    "SumOfMeans",
    "encoder_layer_names",
    "explain",
    "spatial_layer_names",
]
