"""``attention-x-recon``: the reconstruction error weighted by an attention map (vaecam's design).

The reconstruction error says *how wrong* a pixel is, the attention map *where the encoder
looked* when placing the image in latent space. The product keeps errors the encoder attended
to and damps errors elsewhere (blurry edges of normal structure)::

    map = error(x, x_hat) * (a + floor) / (1 + floor),   a = min-max of the attention map

* The attention map (one setting of :mod:`vaecam.maps.attention`: ``method``, ``activation``,
  ``layer``, ``grad_norm``, ``stats``) is rescaled to [0, 1] *per image*: only where the
  encoder looked within the image matters, its raw scale differs from image to image; the
  error keeps the scale that ranks pixels across images.
* ``floor`` (default 0.1) keeps ``floor / (1 + floor)`` of the error (about a tenth) where
  attention is zero, so pixels the map ignores (ReLU zeroes much of it) are still ranked by
  their error instead of tying at 0. Dividing by ``1 + floor`` keeps the map at most the error
  itself (``floor = 0``: pure gating).
* ``error``: ``abs`` (default, the paper's baseline), ``squared`` or ``ssim``.

The reconstruction comes from the shared forward pass; the attention map is shared with an
``attention`` map of the same setting in the same batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from vaecam.attention import LatentStats
from vaecam.errors import ConfigError
from vaecam.maps.attention import AttentionMap
from vaecam.maps.base import AnomalyMap, ForwardCache, check_non_negative, min_max
from vaecam.maps.reconstruction_error import ERROR_KINDS, ErrorKind, reconstruction_error
from vaecam.maps.registry import register_map
from vaecam.maps.setting import Setting, SettingContext

DEFAULT_FLOOR = 0.1


@register_map
class AttentionWeightedErrorMap(AnomalyMap):
    """Reconstruction error x (per-image min-max attention + floor) / (1 + floor)."""

    name = "attention-x-recon"
    summary = "reconstruction error weighted by attention"
    reads_latent = True

    @classmethod
    def settings(cls, context: SettingContext, chosen: Mapping[str, Any] | None = None
                 ) -> list[Setting]:
        """One setting: the attention setting chosen on training data, else method 1 with ReLU
        at the run's first layer."""
        default = {"method": "1", "activation": "relu",
                   "layer": next(iter(context.layers.values()))}
        return [Setting(cls.name, options=chosen or default)]

    @classmethod
    def candidates(cls, context: SettingContext) -> list[Setting]:
        """One candidate per point of the run's attention grid."""
        return [Setting(cls.name, p.label, p.method, p.activation,
                        {"method": p.method, "activation": p.activation, "layer": p.module,
                         "grad_norm": p.grad_norm})
                for p in context.grid()]

    @classmethod
    def needs_latent_stats(cls, context: SettingContext) -> bool:
        return AttentionMap.needs_latent_stats(context)

    @classmethod
    def run_options(cls, context: SettingContext) -> dict[str, Any]:
        return AttentionMap.run_options(context)

    def __init__(
        self,
        error: ErrorKind = "abs",
        floor: float = DEFAULT_FLOOR,
        method: str = "1",
        activation: str = "relu",
        layer: str | None = None,
        grad_norm: str = "none",
        stats: LatentStats | None = None,
    ):
        if error not in ERROR_KINDS:
            raise ConfigError(f"attention-x-recon error must be one of {', '.join(ERROR_KINDS)}, "
                              f"not '{error}'")
        self.error = error
        self.floor = check_non_negative("floor", floor)
        self.attention = AttentionMap(method, activation, layer, grad_norm, stats)

    @property
    def label(self) -> str:
        changed = [] if self.error == "abs" else [f"error={self.error}"]
        changed += [] if self.floor == DEFAULT_FLOOR else [f"floor={self.floor}"]
        changed += self.attention.changed_options()
        return f"{self.name}({', '.join(changed)})" if changed else self.name

    def check(self, model: nn.Module) -> None:
        super().check(model)
        self.attention.check(model)

    def compute(self, cache: ForwardCache) -> Tensor:
        weight = (min_max(self.attention.explain(cache)) + self.floor) / (1 + self.floor)
        return reconstruction_error(cache.images, cache.recon, self.error) * weight
