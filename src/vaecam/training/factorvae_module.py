"""Lightning module for FactorVAE (Kim & Mnih 2018) and AD-FactorVAE (Liu et al. 2020).

One training step, with manual optimisation and two Adam optimisers:

1. VAE step on the batch ``x``: ``recon + KL + gamma * TC`` (+ ``lambda * L_AD`` for
   AD-FactorVAE, on per-dimension attention maps that stay in the autograd graph).
2. Discriminator step on *detached* latents: the first half of the batch's ``z`` are the q(z)
   samples, the second half, with every dim permuted across it, the product-of-marginals samples.
   Kim & Mnih draw a second batch for the permuted samples; two halves of one batch are two
   independent batches of B/2 and need no extra forward pass.

All randomness of a step (reparameterisation noise, permutations, AD pair choice) comes from
:func:`step_generator`, so a resumed run draws what an uninterrupted run would have drawn. The
discriminator lives under the ``discriminator.`` prefix of the state dict, the VAE under
``model.``, so :func:`vaecam.training.checkpoints.load_model` rebuilds the VAE alone.

Lightning counts every ``LightningOptimizer.step`` of manual optimisation as a global step; the
discriminator is stepped through its raw optimiser so that ``global_step`` (and ``max_steps``)
count training iterations. That bypasses the gradient scaler, so ``16-mixed`` precision is
refused (``32-true``, ``bf16-mixed`` and the ``-true`` precisions need no scaler).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from torch import Tensor

from vaecam.attention import AttentionExplainer
from vaecam.data.ground_truth import GroundTruthData
from vaecam.errors import ConfigError
from vaecam.losses.ad import AGGREGATIONS, ad_loss, select_pairs
from vaecam.losses.factorvae import discriminator_loss, total_correlation
from vaecam.metrics.disentanglement import factor_vae_metric, torch_representation
from vaecam.models import build_model
from vaecam.models.factorvae import Discriminator, FactorVAE
from vaecam.training.checkpoints import read_checkpoint, vaecam_metadata
from vaecam.training.module import batch_images, check_finite, seeded_init, step_generator

VARIANTS = ("factorvae", "ad-factorvae")
AD_ACTIVATIONS = ("relu", "abs")
# Metric sizes of the periodic score during training: small, a few seconds on a CPU.
DEFAULT_SCORE_SIZES = {"batch_size": 64, "num_train": 100, "num_eval": 50,
                       "num_variance_estimate": 1000}


@dataclass(frozen=True)
class ADLossSettings:
    """The attention disentanglement loss of AD-FactorVAE (ignored by plain FactorVAE).

    Args:
        lambda_ad: weight of the AD loss (>= 0).
        ad_layer: attention layer (default: the model's last conv, ``encoder.6``).
        ad_activation: ``relu`` (paper; better in the reproduction) or ``abs``.
        ad_pairs: ``all`` latent pairs or a number of random distinct pairs per step.
        ad_aggregation: ``mean`` or ``sum`` over pairs.
    """

    lambda_ad: float = 1.0
    ad_layer: str | None = None
    ad_activation: str = "relu"
    ad_pairs: str | int = "all"
    ad_aggregation: str = "mean"

    def __post_init__(self) -> None:
        if not self.lambda_ad >= 0:
            raise ConfigError(f"lambda must be >= 0 (the AD loss weight), not {self.lambda_ad}")
        if self.ad_activation not in AD_ACTIVATIONS:
            raise ConfigError(f"AD activation must be one of {', '.join(AD_ACTIVATIONS)}, "
                              f"not '{self.ad_activation}'")
        if self.ad_aggregation not in AGGREGATIONS:
            raise ConfigError(f"AD aggregation must be one of {', '.join(AGGREGATIONS)}, "
                              f"not '{self.ad_aggregation}'")


@dataclass(frozen=True)
class OptimiserSettings:
    """The two Adam optimisers: ``lr``, ``betas`` of the VAE; ``d_lr``, ``d_betas`` of the
    TC discriminator (Kim & Mnih's values by default)."""

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    d_lr: float = 1e-4
    d_betas: tuple[float, float] = (0.5, 0.9)


@dataclass(frozen=True)
class ScoreSettings:
    """The FactorVAE metric logged during training as ``metric/factorvae``.

    Args:
        score_every: score every this many steps (0: off).
        score_sizes: FactorVAE metric sizes (default :data:`DEFAULT_SCORE_SIZES`).
        score_data: the ground-truth data to score on; needed when ``score_every`` > 0.
    """

    score_every: int = 0
    score_sizes: Mapping[str, int] | None = None
    score_data: GroundTruthData | None = None

    def __post_init__(self) -> None:
        if self.score_every < 0:
            raise ConfigError(f"score_every must be >= 0 (0 disables), not {self.score_every}")
        if self.score_every and self.score_data is None:
            raise ConfigError("score_every needs the ground-truth data to score on")


def _fields(settings: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A settings dataclass as its field values, by name (not copied, unlike ``asdict``)."""
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)
            if f.name not in skip}


class FactorVAEModule(L.LightningModule):
    """Trains a ``factorvae`` VAE with a TC discriminator, optionally with the AD loss.

    Args:
        model_config: keyword arguments of ``build_model("factorvae", ...)``.
        variant: ``factorvae`` or ``ad-factorvae``.
        gamma: weight of the TC penalty (Kim & Mnih use 40 on dSprites).
        ad: the AD loss (``ad-factorvae`` only).
        optimisers: Adam settings of the VAE and the discriminator.
        seed: seed of the initial weights and of every step's randomness.
        scoring: the periodic FactorVAE metric during training.
        extra_metadata: more entries for the checkpoint's ``vaecam`` metadata.

    The hyperparameters saved in checkpoints (and the run identity built from them) keep the flat
    layout of the settings' field names, ``model_config``, ``variant``, ``gamma``, ``seed``;
    :meth:`from_hparams` rebuilds a module from it.
    """

    def __init__(
        self,
        model_config: dict[str, Any],
        variant: str = "factorvae",
        gamma: float = 40.0,
        ad: ADLossSettings | None = None,
        optimisers: OptimiserSettings | None = None,
        seed: int = 0,
        scoring: ScoreSettings | None = None,
        extra_metadata: dict[str, Any] | None = None,
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"unknown model '{variant}'; choose one of: {', '.join(VARIANTS)}")
        if not gamma >= 0:
            raise ConfigError(f"gamma must be >= 0 (the TC weight), not {gamma}")
        self.ad = ad or ADLossSettings()
        self.optimisers = optimisers or OptimiserSettings()
        self.scoring = scoring or ScoreSettings()
        self.save_hyperparameters({
            "model_config": model_config, "variant": variant, "gamma": gamma,
            **_fields(self.ad), **_fields(self.optimisers), "seed": seed,
            **_fields(self.scoring, skip=("score_data",)),
        })
        # The name Lightning gave hyperparameters saved from keyword arguments, as before.
        self._hparams_name = "kwargs"
        self.automatic_optimization = False
        with seeded_init(seed):
            self.model: FactorVAE = build_model("factorvae", **model_config)  # type: ignore[assignment]
            init = self.model.config["init"]
            self.discriminator = Discriminator(self.model.latent_dim, init=init)
        self.variant = variant
        self.gamma = float(gamma)
        self.lambda_ad = float(self.ad.lambda_ad)
        self.explainer: AttentionExplainer | None = None
        if variant == "ad-factorvae":
            select_pairs(self.model.latent_dim, self.ad.ad_pairs)  # validates the pair option
            self.explainer = AttentionExplainer(
                self.model,
                self.ad.ad_layer or self.model.default_layer,
                activation=self.ad.ad_activation,
                upsample=False,
                eval_mode=False,
            )
        self.seed = seed
        self.score_sizes = dict(self.scoring.score_sizes or DEFAULT_SCORE_SIZES)
        self.extra_metadata = dict(extra_metadata or {})

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], score_data: GroundTruthData | None = None,
                     extra_metadata: dict[str, Any] | None = None) -> FactorVAEModule:
        """A module from the flat hyperparameters stored in a checkpoint (any vaecam version).

        Missing entries take their defaults; ``score_data`` is not stored, so without it the
        periodic score is off.
        """
        def pick(settings: type) -> dict[str, Any]:
            return {f.name: hparams[f.name] for f in dataclasses.fields(settings)
                    if f.name in hparams}

        scoring = pick(ScoreSettings)
        if score_data is None:
            scoring["score_every"] = 0
        return cls(
            hparams["model_config"],
            **{k: hparams[k] for k in ("variant", "gamma", "seed") if k in hparams},
            ad=ADLossSettings(**pick(ADLossSettings)),
            optimisers=OptimiserSettings(**pick(OptimiserSettings)),
            scoring=ScoreSettings(**scoring, score_data=score_data),
            extra_metadata=extra_metadata,
        )

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls, checkpoint_path: str | os.PathLike[str], score_data: GroundTruthData | None = None,
        **_: Any,
    ) -> FactorVAEModule:
        """The module of a checkpoint: settings from its hyperparameters, then its weights.

        Lightning's own loader would pass the flat hyperparameters to the constructor by name,
        where the grouped settings no longer match them.
        """
        ckpt = read_checkpoint(checkpoint_path)
        meta = ckpt["vaecam"]
        known = {"format", "model", "config", "variant", "gamma", "lambda", "ad", "seed"}
        module = cls.from_hparams(ckpt.get("hyper_parameters", {}), score_data,
                                  {k: v for k, v in meta.items() if k not in known})
        module.load_state_dict(ckpt["state_dict"])
        return module

    def on_fit_start(self) -> None:
        if self.trainer.precision == "16-mixed":
            raise ConfigError(
                "FactorVAE training does not support 16-mixed precision; use 32-true or bf16-mixed"
            )

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x = batch_images(batch)
        if len(x) < 4:
            raise ConfigError(f"FactorVAE needs batches of at least 4 images, got {len(x)}")
        opt_vae, opt_d = self.optimizers()  # type: ignore[misc]
        step = self.global_step
        gen = step_generator(self.seed, step, self.global_rank, x.device)

        # Discriminator weights frozen here: the TC term trains the encoder only, and no time
        # goes into discriminator weight gradients that would be thrown away.
        with self.toggled_optimizer(opt_vae):
            out = self.model(x, generator=gen)
            terms = self.model.loss(out, x)
            tc = total_correlation(self.discriminator, out.z)
            loss = terms.total + self.gamma * tc
            logs = {"train/recon": terms.recon, "train/kl": terms.kl, "train/tc": tc}
            if self.explainer is not None:
                maps = self.explainer.per_dimension(x, differentiable=True)
                ad = ad_loss(maps, self.ad.ad_pairs, self.ad.ad_aggregation, gen)
                loss = loss + self.lambda_ad * ad
                logs["train/ad"] = ad
            check_finite(loss, step)
            opt_vae.zero_grad()
            self.manual_backward(loss)
            opt_vae.step()

        half = len(x) // 2
        d_loss = discriminator_loss(self.discriminator, out.z[:half], out.z[half:], gen)
        check_finite(d_loss, step, "discriminator loss")
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.optimizer.step()  # raw step: global_step counts iterations, see module doc

        logs.update({"train/loss": loss, "train/d_loss": d_loss})
        self.log_dict(
            {k: v.detach() for k, v in logs.items()},
            prog_bar=False,
            on_step=True,
            on_epoch=True,
            batch_size=len(x),
            sync_dist=True,
        )
        return loss.detach()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Every ``score_every`` steps: FactorVAE metric on the ground-truth data (rank 0)."""
        every = self.scoring.score_every
        if not every or self.global_step % every:
            return
        if not self.trainer.is_global_zero or self.scoring.score_data is None:
            return
        result = factor_vae_metric(
            self.scoring.score_data,
            torch_representation(self.model, self.device),
            seed=self.seed,
            **self.score_sizes,
        )
        score = float(result["eval_accuracy"])
        # Straight to the loggers: ``self.log`` from this hook would repeat the value at every
        # later logging step until the next score, which reads as a score that was measured.
        for logger in self.loggers:
            logger.log_metrics({"metric/factorvae": score}, step=self.global_step)
        self.log("metric/factorvae", score, on_step=True, on_epoch=False, rank_zero_only=True,
                 prog_bar=True, logger=False)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        opt = self.optimisers
        return [
            torch.optim.Adam(self.model.parameters(), lr=opt.lr, betas=tuple(opt.betas)),
            torch.optim.Adam(self.discriminator.parameters(), lr=opt.d_lr,
                             betas=tuple(opt.d_betas)),
        ]

    def metadata(self) -> dict[str, Any]:
        """Training settings stored beside the model configuration in checkpoints."""
        ad = None
        if self.explainer is not None:
            ad = {"layer": self.explainer.layer_name, "activation": self.ad.ad_activation,
                  "pairs": self.ad.ad_pairs, "aggregation": self.ad.ad_aggregation}
        return {
            "variant": self.variant,
            "gamma": self.gamma,
            "lambda": self.lambda_ad if ad else None,
            "ad": ad,
            "seed": self.seed,
            **self.extra_metadata,
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["vaecam"] = vaecam_metadata(self.model, **self.metadata())

