"""The one-class MNIST VAE of Liu et al. (architecture of the authors' public code).

Encoder: Conv(1->64, k4 s2 p1) ReLU Conv(64->128, k4 s2 p1) ReLU Flatten Linear(6272->1024) ReLU,
then Linear(1024->latent) for mu and for logvar. Decoder mirrored with transposed convolutions
and a Sigmoid. Loss: summed binary cross-entropy + KL. The layer names match the authors' module
(``encoder.0`` first conv, ``encoder.2`` second conv), so ``encoder.2`` is their default layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from vaecam.models import register
from vaecam.models.base import VAE
from vaecam.models.blocks import conv_encoder


@register("mnist-vae")
class MNISTVAE(VAE):
    """Two-conv VAE for small gray images; sizes come from configuration."""

    default_layer = "encoder.2"
    conv_layers = {"conv1": "encoder.0", "conv2": "encoder.2"}

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 28, 28),
        latent_dim: int = 32,
        channels: Sequence[int] = (64, 128),
        hidden: int = 1024,
    ):
        super().__init__(tuple(input_shape), latent_dim, channels=list(channels), hidden=hidden)
        c_in, h, w = self.input_shape
        c1, c2 = channels
        if h % 4 or w % 4:
            raise ValueError(f"image height and width must be multiples of 4, got {h}x{w}")
        self.feature_shape = (c2, h // 4, w // 4)
        flat = c2 * (h // 4) * (w // 4)
        self.encoder = conv_encoder(c_in, (c1, c2), flat, hidden)
        self.fc_mu = nn.Linear(hidden, latent_dim)
        self.fc_logvar = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, flat),
            nn.ReLU(),
            nn.Unflatten(1, self.feature_shape),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, c_in, 4, 2, 1),
            nn.Sigmoid(),
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)
