"""vaecam: visual explanations for variational autoencoders."""

__version__ = "0.1.0"
