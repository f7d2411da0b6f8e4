"""The Lightning module that trains any vaecam VAE on its own loss.

Three switches against posterior collapse, beyond the papers (all off by default, which trains
the plain negative ELBO): ``recon_scale`` multiplies the reconstruction term (a sharper decoder
likelihood, e.g. a gaussian of standard deviation ``1/sqrt(2 * recon_scale)`` with the ``mse``
loss; the same as a KL weight beta = 1 / recon_scale), ``kl_warmup_epochs`` scales the KL term
linearly from 0 to 1 over the first epochs (KL annealing, Bowman et al. 2016), and ``free_bits``
lets each latent dimension keep up to that many nats of KL without penalty (Kingma et al. 2016,
"Improved variational inference with inverse autoregressive flow"). Logged ``train/kl`` and
``val/loss`` are always the true KL and the unscaled negative ELBO.

Randomness is a function of the seed alone: the initial weights are drawn from ``seed`` (whatever
ran before in the process), and the noise of a training step (the reparameterisation) from a
generator seeded by (seed, global step, rank), so a run resumed from a checkpoint draws exactly
the noise an uninterrupted run would have drawn.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from torch import Tensor

from vaecam.data.transforms import AugmentConfig, augment_batch
from vaecam.errors import VaecamError
from vaecam.models import VAE, VAEOutput, build_model
from vaecam.models.base import gaussian_kl_per_dim, reparameterize
from vaecam.training.checkpoints import vaecam_metadata


def step_generator(seed: int, step: int, rank: int, device: torch.device) -> torch.Generator:
    """A generator for one training step, independent of everything that ran before."""
    gen = torch.Generator(device=device)
    gen.manual_seed((seed * 1_000_003 + step * 101 + rank) % (2**63 - 1))
    return gen


@contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Draw the weights of modules built inside from ``seed``; the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def check_finite(value: Tensor, step: int, what: str = "loss") -> None:
    """Stop training with a clear message when the loss is NaN or infinite."""
    if not math.isfinite(float(value.detach())):
        raise VaecamError(
            f"the {what} became {float(value.detach())} at step {step}; lower the learning rate "
            "(--lr) or check the input data for NaN values, then resume from the last checkpoint"
        )


def batch_images(batch: Any) -> Tensor:
    """The image tensor of a batch (a tensor or an (images, ...) tuple); rejects NaN pixels."""
    x = batch[0] if isinstance(batch, (list, tuple)) else batch
    if not torch.isfinite(x).all():
        raise VaecamError("a training batch contains NaN or infinite pixel values; "
                          "check the dataset files and the preprocessing")
    return x


class VAEModule(L.LightningModule):
    """Trains ``build_model(model_name, **model_config)`` with Adam on the model's loss."""

    def __init__(
        self,
        model_name: str,
        model_config: dict[str, Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        seed: int = 0,
        kl_warmup_epochs: float = 0.0,
        free_bits: float = 0.0,
        recon_scale: float = 1.0,
        extra_metadata: dict[str, Any] | None = None,
        device_augment: tuple[AugmentConfig, int] | None = None,
        fit_images: Tensor | None = None,
    ):
        """``device_augment`` (config, seed): batches arrive as (images, item indices) and are
        augmented on the device with :func:`~vaecam.data.transforms.augment_batch`, the same
        draws as the per-item augmentation of the dataset it wraps. ``fit_images``: the
        training images the model learns its data constants from (:meth:`VAE.fit_data`)."""
        super().__init__()
        self.save_hyperparameters(ignore=["extra_metadata", "device_augment", "fit_images"])
        self.device_augment = device_augment
        self.kl_warmup_epochs = float(kl_warmup_epochs)
        self.free_bits = float(free_bits)
        self.recon_scale = float(recon_scale)
        with seeded_init(seed):
            self.model: VAE = build_model(model_name, **model_config)
        if fit_images is not None:
            self.model.fit_data(fit_images)
        self.lr = lr
        self.betas = tuple(betas)
        self.seed = seed
        self.extra_metadata = dict(extra_metadata or {})

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.device_augment is not None and self.trainer.training:
            config, seed = self.device_augment
            images, indices = batch
            return augment_batch(images, config, seed, indices)
        return batch

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x = batch_images(batch)
        gen = step_generator(self.seed, self.global_step, self.global_rank, x.device)
        out = self.model(x, generator=gen)
        terms = self.model.loss(out, x)
        loss = self._objective(terms.total, terms.recon, terms.kl, out)
        check_finite(loss, self.global_step)
        self.log_dict(
            {"train/loss": terms.total, "train/recon": terms.recon, "train/kl": terms.kl},
            prog_bar=True,
            on_step=True,
            on_epoch=True,
            batch_size=x.shape[0],
            sync_dist=True,
        )
        return loss

    def kl_weight(self) -> float:
        """Weight of the KL term at this step: 1, or the linear warm-up's value."""
        if self.kl_warmup_epochs <= 0:
            return 1.0
        per_epoch = max(1, int(self.trainer.num_training_batches))
        return min(1.0, (self.global_step + 1) / (self.kl_warmup_epochs * per_epoch))

    def _objective(self, total: Tensor, recon: Tensor, kl: Tensor, out: VAEOutput) -> Tensor:
        """The loss to minimise: the negative ELBO, or its scaled / annealed / free-bits form."""
        if self.kl_warmup_epochs <= 0 and self.free_bits <= 0 and self.recon_scale == 1.0:
            return total
        if self.free_bits > 0:
            per_dim = gaussian_kl_per_dim(out.mu, out.logvar).mean(dim=0)
            kl = per_dim.clamp_min(self.free_bits).sum()
        return self.recon_scale * recon + self.kl_weight() * kl

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x = batch_images(batch)
        gen = step_generator(self.seed + 1, batch_idx, self.global_rank, x.device)
        mu, logvar = self.model.encode(x)
        z = reparameterize(mu, logvar, gen)  # the ELBO needs a sampled z, also in eval mode
        out = VAEOutput(recon=self.model.decode(z), mu=mu, logvar=logvar, z=z)
        terms = self.model.loss(out, x)
        self.log("val/loss", terms.total, prog_bar=True, batch_size=x.shape[0], sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.lr, betas=self.betas)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["vaecam"] = vaecam_metadata(self.model, **self.extra_metadata)
