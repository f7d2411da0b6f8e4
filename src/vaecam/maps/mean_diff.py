"""``mean-diff``: ``|x - mean training image|``, mean over channels (a trivial reference).

A map that needs no model at all: how far each pixel is from the average normal image. Where it
localises anomalies as well as a VAE-based map, the VAE adds nothing there (pasted bright ink on
a dark background is found by the ink alone), so every localisation run scores it beside the
reconstruction baseline and a map is called a win only when it also beats this reference.

The mean image comes from the training images (normal data), like the latent statistics of the
attention's normal-difference method: :func:`mean_image` over the training batches, passed as
``mean_image``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from torch import Tensor, nn

from vaecam.errors import ConfigError
from vaecam.maps.base import AnomalyMap, ForwardCache
from vaecam.maps.registry import register_map
from vaecam.maps.setting import SettingContext


def mean_image(batches: Iterable[Tensor | Sequence[Tensor]]) -> Tensor:
    """The pixel-wise mean (C, H, W) of every image in ``batches`` (tensors, or tuples whose
    first item is the image batch, as a DataLoader gives them), summed in float64."""
    total: Tensor | None = None
    count = 0
    for batch in batches:
        images = batch if isinstance(batch, Tensor) else batch[0]
        part = images.detach().double().sum(dim=0).cpu()
        total = part if total is None else total + part
        count += images.shape[0]
    if total is None or count == 0:
        raise ConfigError("no training images to average for the mean-diff map; check the "
                          "training data")
    return (total / count).float()


@register_map
class MeanDifferenceMap(AnomalyMap):
    """``|x - mean_image|``, mean over channels; ``mean_image`` (C, H, W) of the training data."""

    name = "mean-diff"
    summary = "distance to the mean training image, a trivial reference"
    needs_decoder = False

    @classmethod
    def run_options(cls, context: SettingContext) -> dict[str, Any]:
        return {"mean_image": context.mean_image}

    def __init__(self, mean_image: Tensor | None = None):
        if mean_image is not None and mean_image.dim() != 3:
            raise ConfigError(f"mean-diff needs a (C, H, W) mean image, got shape "
                              f"{tuple(mean_image.shape)}")
        self.mean_image = mean_image

    def check(self, model: nn.Module) -> None:
        if self.mean_image is None:
            raise ConfigError(
                "map 'mean-diff' needs the mean training image: "
                "build_map('mean-diff', mean_image=mean_image(train_batches)) "
                "(vaecam localize computes it from the training data)"
            )

    def compute(self, cache: ForwardCache) -> Tensor:
        assert self.mean_image is not None
        if tuple(self.mean_image.shape) != tuple(cache.images.shape[1:]):
            raise ConfigError(
                f"the mean training image has shape {tuple(self.mean_image.shape)}, the images "
                f"{tuple(cache.images.shape[1:])}; average training images of the test size"
            )
        reference = self.mean_image.to(device=cache.images.device, dtype=cache.images.dtype)
        return (cache.images - reference).abs().mean(dim=1)
