"""The three-conv VAE of Liu et al. for UCSD pedestrian frames (addendum, Table 2).

Encoder: Conv(1->64) ReLU Conv(64->128) ReLU Conv(128->256) ReLU, all k4 s2 p1, so 100x100
frames give 256x12x12; Flatten, Linear(36864->1024) ReLU, then Linear(1024->latent) for mu and
for logvar. The decoder mirrors it with transposed convolutions; a kernel of 5 instead of 4
where a size is odd (12 -> 25 for 100x100 frames) lands exactly on the input size. Sigmoid
output. Loss: summed binary cross-entropy + KL (as the MNIST model and the authors' code), or
summed squared error + KL with ``loss="mse"`` (a Gaussian decoder with unit variance, up to
constants).

Beyond the paper, two switches keep the model alive on frames that barely differ (UCSD training
frames: per-pixel std 0.025 around the mean frame), named together by :data:`RECIPES`:

* ``standardize=True``: the model holds the mean training frame and the spread of the frames
  around it (buffers set by :meth:`UCSDVAE.fit_data` before training, saved in checkpoints) and
  encodes ``(x - mean) / spread``; the decoder predicts the standardised frame and returns
  ``mean + spread * output``, so reconstructions stay in pixel units. Its loss is
  ``loss="gaussian"``: a Gaussian decoder whose standard deviation is that spread (a decoder
  variance calibrated to the data, instead of the unit variance of ``mse``, under which the
  reconstruction term gains almost nothing from encoding a frame).
* ``batchnorm=True``: BatchNorm after every encoder convolution and the hidden Linear, with
  LeakyReLU(0.2) (see :func:`~vaecam.models.blocks.conv_encoder`).

Layer names: the encoder is one ``nn.Sequential``, so the convolutions are ``encoder.0``,
``encoder.2`` and ``encoder.4`` (outputs before their ReLU, as the authors' ``encoder.2``;
``encoder.0/3/6`` with ``batchnorm``); :attr:`UCSDVAE.conv_layers` maps the table names
conv1..conv3 to them. Without BatchNorm ``encoder.4`` is followed by ReLU -> Flatten -> Linear,
so the attention engine's exact Linear-head fast path applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from vaecam.errors import ConfigError
from vaecam.models import register
from vaecam.models.base import VAE
from vaecam.models.blocks import conv_encoder, conv_layer_names

# Named combinations of the model switches (``vaecam train ucsd --recipe``); ``paper`` is the
# published model. Chosen on held-out TRAINING clips (docs/ucsd-recipe.md).
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"standardize": False, "batchnorm": False},
    "standardized": {"standardize": True, "batchnorm": False, "loss": "gaussian"},
    "batchnorm": {"standardize": False, "batchnorm": True},
    "live": {"standardize": True, "batchnorm": True, "loss": "gaussian"},
}


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
    conv_layers = conv_layer_names(3)

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 100, 100),
        latent_dim: int = 32,
        channels: Sequence[int] = (64, 128, 256),
        hidden: int = 1024,
        loss: Literal["bce", "mse", "gaussian"] = "bce",
        standardize: bool = False,
        batchnorm: bool = False,
    ):
        super().__init__(
            tuple(input_shape), latent_dim, channels=list(channels), hidden=hidden, loss=loss,
            standardize=bool(standardize), batchnorm=bool(batchnorm),
        )
        if loss not in ("bce", "mse", "gaussian"):
            raise ConfigError(f"UCSD VAE loss must be 'bce', 'mse' or 'gaussian', not {loss!r}")
        if (loss == "gaussian") != bool(standardize):
            raise ConfigError("the UCSD VAE's 'gaussian' loss goes with standardize=True (its "
                              "standard deviation is the spread of the training frames) and "
                              "standardize=True with loss 'gaussian'; use --recipe standardized "
                              "or live, or neither")
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
        self.encoder = conv_encoder(c_in, (c1, c2, c3), flat, hidden, batchnorm=batchnorm)
        self.conv_layers = conv_layer_names(3, batchnorm)
        self.default_layer = self.conv_layers["conv2"]
        self.standardize = bool(standardize)
        if standardize:  # mean training frame and spread around it, set by fit_data
            self.register_buffer("input_mean", torch.zeros(1, c_in, h, w))
            self.register_buffer("input_spread", torch.ones(()))
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
            *([] if standardize else [nn.Sigmoid()]),
        )

    @torch.no_grad()
    def fit_data(self, images: Tensor) -> None:
        """Learn the mean training frame and the frames' spread around it (``standardize``).

        ``images`` (N, C, H, W) in [0, 1]: all training frames. The spread is the root mean
        square of ``images - mean`` over every pixel of every frame. The paper model has no
        data-dependent constants and ignores the call.
        """
        if not self.standardize:
            return
        images = images.to(self.input_mean.device, self.input_mean.dtype)
        mean = images.mean(dim=0, keepdim=True)
        spread = (images - mean).pow(2).mean().sqrt()
        if not float(spread) > 0:
            raise ConfigError("the training frames are all identical: nothing to standardise")
        self.input_mean.copy_(mean)
        self.input_spread.copy_(spread)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.standardize:
            x = (x - self.input_mean) / self.input_spread
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: Tensor) -> Tensor:
        out = self.decoder(z)
        return self.input_mean + self.input_spread * out if self.standardize else out

    def reconstruction_loss(self, recon: Tensor, x: Tensor) -> Tensor:
        """Per-sample summed BCE (default), squared error (``mse``) or the Gaussian negative
        log-likelihood with standard deviation ``input_spread`` up to constants (``gaussian``)."""
        if self.config["loss"] == "gaussian":
            return 0.5 * ((recon - x) / self.input_spread).pow(2).flatten(1).sum(dim=1)
        if self.config["loss"] == "mse":
            return (recon - x).pow(2).flatten(1).sum(dim=1)
        return super().reconstruction_loss(recon, x)
