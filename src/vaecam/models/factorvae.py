"""FactorVAE networks of Kim & Mnih ("Disentangling by Factorising", ICML 2018) for dSprites.

Encoder: Conv 32-32-64-64 (k4 s2 p1, ReLU) -> Flatten -> FC 128 (ReLU) -> FC 2*latent, split into
mu and logvar. Decoder mirrored: FC 128 -> FC 64*4*4 -> ConvTranspose 64-32-32-1 (k4 s2 p1), giving
Bernoulli logits; the reconstruction loss is binary cross-entropy with logits summed over pixels
(dSprites images are binary). Latent 32 as in Liu et al. 2020 (Kim & Mnih use 10).

The whole encoder is one ``nn.Sequential`` in which the last conv (``encoder.6``, the default
attention layer) is followed by ReLU -> Flatten -> Linear, so the attention engine's exact
Linear-head fast path applies; the AD loss relies on that for speed.

``init`` chooses the weight initialisation: ``default`` (PyTorch's own, kaiming-uniform; the only
one with which the reproduction reached the FactorVAE baseline), ``normal`` (N(0, 0.02), zero
bias) or ``kaiming-normal`` (zero bias), the two options of the public port the reproduction used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaecam.errors import ConfigError
from vaecam.models import register
from vaecam.models.base import VAE, LossTerms, VAEOutput, gaussian_kl, reparameterize

INITS = ("default", "normal", "kaiming-normal")


def init_weights(module: nn.Module, init: str) -> None:
    """Re-initialise every Linear / conv layer of ``module`` with scheme ``init`` (see INITS)."""
    if init not in INITS:
        raise ConfigError(f"unknown init '{init}'; choose one of: {', '.join(INITS)}")
    if init == "default":
        return
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            if init == "normal":
                nn.init.normal_(m.weight, 0.0, 0.02)
            else:
                nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@dataclass
class BernoulliOutput(VAEOutput):
    """A forward pass that also keeps the decoder's logits (``recon`` is their sigmoid)."""

    logits: Tensor


@register("factorvae")
class FactorVAE(VAE):
    """The FactorVAE encoder/decoder; a plain VAE (the TC term lives in the training module)."""

    default_layer = "encoder.6"

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 64, 64),
        latent_dim: int = 32,
        channels: Sequence[int] = (32, 32, 64, 64),
        hidden: int = 128,
        init: str = "default",
    ):
        super().__init__(
            tuple(input_shape), latent_dim, channels=list(channels), hidden=hidden, init=init
        )
        c_in, h, w = self.input_shape
        scale = 2 ** len(channels)
        if h % scale or w % scale:
            raise ConfigError(f"image height and width must be multiples of {scale}, got {h}x{w}")
        self.feature_shape = (channels[-1], h // scale, w // scale)
        flat = channels[-1] * (h // scale) * (w // scale)
        encoder: list[nn.Module] = []
        for c_prev, c in zip([c_in, *channels[:-1]], channels, strict=True):
            encoder += [nn.Conv2d(c_prev, c, 4, 2, 1), nn.ReLU()]
        encoder += [nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU()]
        encoder.append(nn.Linear(hidden, 2 * latent_dim))
        self.encoder = nn.Sequential(*encoder)
        self.default_layer = f"encoder.{2 * len(channels) - 2}"  # the last conv
        rev = list(reversed(channels))
        decoder: list[nn.Module] = [
            nn.Linear(latent_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, flat),
            nn.ReLU(),
            nn.Unflatten(1, self.feature_shape),
        ]
        for c, c_next in zip(rev, rev[1:], strict=False):
            decoder += [nn.ConvTranspose2d(c, c_next, 4, 2, 1), nn.ReLU()]
        decoder.append(nn.ConvTranspose2d(rev[-1], c_in, 4, 2, 1))
        self.decoder = nn.Sequential(*decoder)
        init_weights(self, init)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode_logits(self, z: Tensor) -> Tensor:
        """Bernoulli logits of the pixels."""
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> BernoulliOutput:
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, generator) if self.training else mu
        logits = self.decode_logits(z)
        recon = torch.sigmoid(logits)
        return BernoulliOutput(recon=recon, mu=mu, logvar=logvar, z=z, logits=logits)

    def loss(self, out: VAEOutput, x: Tensor) -> LossTerms:
        """Negative ELBO: BCE summed over pixels (from logits when present) + KL, batch mean."""
        if isinstance(out, BernoulliOutput):
            bce = F.binary_cross_entropy_with_logits(out.logits, x, reduction="none")
            recon = bce.flatten(1).sum(dim=1).mean()
        else:
            recon = self.reconstruction_loss(out.recon, x).mean()
        kl = gaussian_kl(out.mu, out.logvar).mean()
        return LossTerms(total=recon + kl, recon=recon, kl=kl)


class Discriminator(nn.Module):
    """The FactorVAE discriminator: an MLP of 6 Linear layers, 2 logits.

    Five hidden layers of ``hidden`` units with LeakyReLU(0.2), then Linear(hidden, 2). Logit 0
    stands for "a sample of q(z)", logit 1 for "a sample of prod_j q(z_j)" (permuted dims).
    """

    def __init__(
        self,
        latent_dim: int = 32,
        hidden: int = 1000,
        num_layers: int = 6,
        negative_slope: float = 0.2,
        init: str = "default",
    ):
        super().__init__()
        widths = [latent_dim] + [hidden] * (num_layers - 1)
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths, widths[1:], strict=False):
            layers += [nn.Linear(w_in, w_out), nn.LeakyReLU(negative_slope)]
        layers.append(nn.Linear(widths[-1], 2))
        self.net = nn.Sequential(*layers)
        init_weights(self, init)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)
