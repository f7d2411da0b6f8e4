"""``attention``: the Grad-CAM attention maps of Liu et al. (CVPR 2020), one setting per instance.

A thin wrapper over :class:`vaecam.attention.AttentionExplainer` with its switches: ``method``
``1`` (mean of the per-dimension maps, Eq. 3), ``2`` (gradient of ``sum(mu)``, with
``grad_norm``) or ``normal-difference`` (Eq. 4 variant, needs :class:`LatentStats` of the
training data), ``activation``, ``activation_order`` (before upsampling, or after it as the
authors' code does), ``layer`` (default: the model's ``default_layer``) and ``normalize``.

Settings that differ only in activation or its order share their gradient work: the *signed*
maps at the layer's resolution (per latent dimension for method 1) are computed once per batch
and layer and kept in the cache; each setting then applies its activation, takes the mean over
dimensions and upsamples, in the engine's order. ``upsample=False`` keeps maps at the layer's
resolution (the ``downscale-masks`` evaluation). The encoder runs inside the engine (it has to
capture the layer), so this method does not use the shared forward pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from vaecam.attention import (
    ACTIVATION_ORDERS,
    GRAD_NORMS,
    METHODS,
    AttentionExplainer,
    LatentStats,
)
from vaecam.attention.activations import get_activation
from vaecam.errors import ConfigError
from vaecam.maps.base import AnomalyMap, ForwardCache
from vaecam.maps.registry import register_map
from vaecam.maps.setting import NORMAL_DIFFERENCE, Setting, SettingContext


@register_map
class AttentionMap(AnomalyMap):
    """Attention maps of one setting of the engine."""

    name = "attention"
    summary = "the grid of --layer x --method x --activation"
    needs_decoder = False
    reads_latent = True
    tuning_marks_one = True  # every grid setting is scored; tuning marks the chosen one

    @classmethod
    def settings(cls, context: SettingContext, chosen: Mapping[str, Any] | None = None
                 ) -> list[Setting]:
        """One setting per point of the run's grid (layer x method x activation)."""
        return [Setting(cls.name, p.label, p.method, p.activation,
                        {"method": p.method, "activation": p.activation, "layer": p.module,
                         "grad_norm": p.grad_norm, "activation_order": context.activation_order,
                         "upsample": context.upsample})
                for p in context.grid()]

    @classmethod
    def candidates(cls, context: SettingContext) -> list[Setting]:
        return cls.settings(context)

    @classmethod
    def needs_latent_stats(cls, context: SettingContext) -> bool:
        return NORMAL_DIFFERENCE in context.methods

    @classmethod
    def run_options(cls, context: SettingContext) -> dict[str, Any]:
        return {"stats": context.stats}

    def __init__(
        self,
        method: str = "1",
        activation: str = "relu",
        layer: str | None = None,
        grad_norm: str = "none",
        stats: LatentStats | None = None,
        normalize: bool = False,
        activation_order: str = "before",
        upsample: bool = True,
    ):
        method = str(method)
        if method not in METHODS:
            raise ConfigError(f"unknown attention method '{method}'; choose one of: "
                              f"{', '.join(METHODS)}")
        get_activation(activation)
        if grad_norm not in GRAD_NORMS:
            raise ConfigError(f"grad_norm must be one of {', '.join(GRAD_NORMS)}, not "
                              f"'{grad_norm}'")
        if grad_norm != "none" and method != "2":
            raise ConfigError(f"grad_norm applies to attention method 2 only, not '{method}'")
        if activation_order not in ACTIVATION_ORDERS:
            raise ConfigError(f"activation_order must be one of {', '.join(ACTIVATION_ORDERS)}, "
                              f"not '{activation_order}'")
        if method == "normal-difference" and stats is None:
            raise ConfigError(
                "attention method normal-difference needs latent statistics of the training "
                "data (stats=LatentStats.from_batches(model, train_batches))"
            )
        self.method = method
        self.activation = activation
        self.layer = layer
        self.grad_norm = grad_norm
        self.stats = stats
        self.normalize = bool(normalize)
        self.activation_order = activation_order
        self.upsample = bool(upsample)

    @property
    def native_resolution(self) -> bool:
        return not self.upsample

    def _signed(self, cache: ForwardCache, layer: str) -> Tensor:
        """(B, R, h, w) signed maps at the layer's resolution: R latent dims for method 1, one
        direction otherwise; shared by every setting of this method, layer and grad norm."""

        def compute() -> Tensor:
            explainer = AttentionExplainer(cache.model, layer, activation="none", upsample=False)
            if self.method == "1":
                return explainer.per_dimension(cache.images)
            if self.method == "2":
                return explainer.method2(cache.images, grad_norm=self.grad_norm)[:, None]  # type: ignore[arg-type]
            assert self.stats is not None
            return explainer.normal_difference(cache.images, self.stats)[:, None]

        key = ("attention-signed", self.method, layer, self.grad_norm, id(self.stats))
        return cache.memo(key, compute)

    def explain(self, cache: ForwardCache) -> Tensor:
        """This setting's (B, H, W) maps of the cache's batch, computed once per batch."""
        key = ("attention", self.method, self.activation, self.layer, self.grad_norm,
               id(self.stats), self.normalize, self.activation_order, self.upsample)
        return cache.memo(key, lambda: self._explain(cache))

    def _explain(self, cache: ForwardCache) -> Tensor:
        layer = self.layer or getattr(cache.model, "default_layer", "")
        maps = self._signed(cache, layer)
        act = get_activation(self.activation)
        size = cache.images.shape[-2:]

        def upsampled(m: Tensor) -> Tensor:
            if not self.upsample or m.shape[-2:] == size:
                return m
            return F.interpolate(m, size=size, mode="bilinear", align_corners=False)

        if self.activation_order == "after-upsample":
            maps = act(upsampled(maps)).mean(dim=1)
        else:
            maps = upsampled(act(maps).mean(dim=1, keepdim=True))[:, 0]
        if self.normalize:
            lo = maps.amin(dim=(-2, -1), keepdim=True)
            hi = maps.amax(dim=(-2, -1), keepdim=True)
            maps = (maps - lo) / (hi - lo).clamp_min(1e-12)
        return maps

    def compute(self, cache: ForwardCache) -> Tensor:
        return self.explain(cache)
