"""vaecam: visual explanations for variational autoencoders.

The attention engine (:class:`AttentionExplainer`, :func:`explain`) works on any VAE whose
``encode(x)`` returns ``(mu, logvar)``; the rest of the package trains the papers' models and
runs their experiments.
"""

from vaecam.attention import AttentionExplainer, LatentStats, explain
from vaecam.models import VAE, VAEOutput, available_models, build_model
from vaecam.training.checkpoints import load_model

__version__ = "0.1.0"

__all__ = [
    "VAE",
    "AttentionExplainer",
    "LatentStats",
    "VAEOutput",
    "available_models",
    "build_model",
    "explain",
    "load_model",
]
