"""The three-conv VAE of Liu et al. for UCSD pedestrian frames (addendum, Table 2).

Encoder: Conv(1->64) ReLU Conv(64->128) ReLU Conv(128->256) ReLU, all k4 s2 p1, so 100x100
frames give 256x12x12; Flatten, Linear(36864->1024) ReLU, then Linear(1024->latent) for mu and
for logvar. The decoder mirrors it with transposed convolutions; a kernel of 5 instead of 4
where a size is odd (12 -> 25 for 100x100 frames) lands exactly on the input size. Sigmoid
output. Loss: summed binary cross-entropy + KL (as the MNIST model and the authors' code), or
summed squared error + KL with ``loss="mse"`` (a Gaussian decoder with unit variance, up to
constants).

Layer names: the encoder is one ``nn.Sequential``, so the convolutions are ``encoder.0``,
``encoder.2`` and ``encoder.4`` (outputs before their ReLU, as the authors' ``encoder.2``);
:attr:`UCSDVAE.conv_layers` maps the table names conv1..conv3 to them. ``encoder.4`` is followed
by ReLU -> Flatten -> Linear, so the attention engine's exact Linear-head fast path applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from vaecam.errors import ConfigError
from vaecam.models import register
from vaecam.models.base import VAE
from vaecam.models.blocks import conv_encoder


def _halve(size: int) -> int:
    """Output size of a k4 s2 p1 convolution."""
    return (size + 2 - 4) // 2 + 1


def _up(
    c_in: int, c_out: int, size_in: tuple[int, int], size_out: tuple[int, int]
) -> nn.ConvTranspose2d:
    """A stride-2 transposed conv from ``size_in`` to ``size_out`` (kernel 4, or 5 if odd)."""
    kernel = tuple(o - 2 * i + 4 for i, o in zip(size_in, size_out, strict=True))
    return nn.ConvTranspose2d(c_in, c_out, kernel, 2, 1)


@register("ucsd-vae")
class UCSDVAE(VAE):
    """Three-conv VAE for gray frames; sizes come from configuration (tests use tiny ones)."""

    default_layer = "encoder.2"
    conv_layers = {"conv1": "encoder.0", "conv2": "encoder.2", "conv3": "encoder.4"}

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 100, 100),
        latent_dim: int = 32,
        channels: Sequence[int] = (64, 128, 256),
        hidden: int = 1024,
        loss: Literal["bce", "mse"] = "bce",
    ):
        super().__init__(
            tuple(input_shape), latent_dim, channels=list(channels), hidden=hidden, loss=loss
        )
        if loss not in ("bce", "mse"):
            raise ConfigError(f"UCSD VAE loss must be 'bce' or 'mse', not {loss!r}")
        if len(channels) != 3:
            raise ConfigError(f"the UCSD VAE needs 3 channel counts, got {list(channels)}")
        c_in, h, w = self.input_shape
        if h < 8 or w < 8:
            raise ConfigError(f"frames must be at least 8x8 pixels for three convs, got {h}x{w}")
        heights, widths = [h], [w]
        for _ in range(3):
            heights.append(_halve(heights[-1]))
            widths.append(_halve(widths[-1]))
        c1, c2, c3 = channels
        self.feature_shape = (c3, heights[3], widths[3])
        flat = c3 * heights[3] * widths[3]
        self.encoder = conv_encoder(c_in, (c1, c2, c3), flat, hidden)
        self.fc_mu = nn.Linear(hidden, latent_dim)
        self.fc_logvar = nn.Linear(hidden, latent_dim)
        sizes = list(zip(heights, widths, strict=True))
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, flat),
            nn.ReLU(),
            nn.Unflatten(1, self.feature_shape),
            _up(c3, c2, sizes[3], sizes[2]),
            nn.ReLU(),
            _up(c2, c1, sizes[2], sizes[1]),
            nn.ReLU(),
            _up(c1, c_in, sizes[1], sizes[0]),
            nn.Sigmoid(),
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def reconstruction_loss(self, recon: Tensor, x: Tensor) -> Tensor:
        """Per-sample summed BCE (default) or summed squared error (``loss="mse"``)."""
        if self.config["loss"] == "mse":
            return (recon - x).pow(2).flatten(1).sum(dim=1)
        return super().reconstruction_loss(recon, x)
