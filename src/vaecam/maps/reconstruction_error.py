"""Reconstruction-error maps: the baseline that attention maps are compared against.

A VAE trained on normal data reconstructs anomalies badly, so the per-pixel difference between an
image and its reconstruction is an anomaly map (the paper's "baseline", 0.86 pixel AUROC on UCSD
Ped1). Three kinds, each reduced over channels by the mean to a (B, H, W) map:

* ``abs`` (default): ``|x - x_hat|``;
* ``squared``: ``(x - x_hat)^2``;
* ``ssim``: ``1 - SSIM(x, x_hat)`` with SSIM's local map (Wang et al. 2004) from a gaussian
  window, computed as scikit-image's ``structural_similarity(gaussian_weights=True,
  use_sample_covariance=False, full=True)`` does, but batched in torch.

:func:`gaussian_filter` (scipy-style, mirrored borders) is the blur of SSIM's window and of
every smoothed map (:func:`vaecam.maps.base.smooth`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from vaecam.errors import ConfigError

ErrorKind = Literal["abs", "squared", "ssim"]
ERROR_KINDS = ("abs", "squared", "ssim")


def _gaussian_kernel(sigma: float, truncate: float, dtype: torch.dtype) -> Tensor:
    """1-D gaussian of radius ``int(truncate * sigma + 0.5)``, normalised (as scipy.ndimage)."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).to(dtype)


def _symmetric_index(n: int, radius: int) -> Tensor:
    """Indices that pad a length-``n`` axis by ``radius`` with mirrored edges (``d c b a | a b``).

    This is scipy.ndimage's ``reflect`` mode (numpy's ``symmetric``), valid for any radius.
    """
    idx = torch.arange(-radius, n + radius) % (2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


def gaussian_filter(images: Tensor, sigma: float = 1.5, truncate: float = 3.5) -> Tensor:
    """Separable gaussian blur of (B, C, H, W) images per channel, mirrored borders."""
    kernel = _gaussian_kernel(sigma, truncate, images.dtype).to(images.device)
    radius = (kernel.numel() - 1) // 2
    b, c, h, w = images.shape
    out = images.reshape(b * c, 1, h, w)
    out = out.index_select(2, _symmetric_index(h, radius).to(images.device))
    out = F.conv2d(out, kernel.view(1, 1, -1, 1))
    out = out.index_select(3, _symmetric_index(w, radius).to(images.device))
    out = F.conv2d(out, kernel.view(1, 1, 1, -1))
    return out.reshape(b, c, h, w)


def ssim_map(
    x: Tensor,
    y: Tensor,
    sigma: float = 1.5,
    truncate: float = 3.5,
    data_range: float = 1.0,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """Local SSIM of two (B, C, H, W) image batches, per pixel and channel: (B, C, H, W)."""
    if x.shape != y.shape or x.dim() != 4:
        raise ConfigError(
            f"SSIM needs two (B, C, H, W) batches of the same shape, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = gaussian_filter(x, sigma, truncate), gaussian_filter(y, sigma, truncate)
    var_x = gaussian_filter(x * x, sigma, truncate) - mu_x * mu_x
    var_y = gaussian_filter(y * y, sigma, truncate) - mu_y * mu_y
    cov = gaussian_filter(x * y, sigma, truncate) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    return numerator / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def reconstruction_error(x: Tensor, recon: Tensor, kind: ErrorKind = "abs") -> Tensor:
    """Per-pixel reconstruction error of (B, C, H, W) batches, mean over channels: (B, H, W)."""
    if kind not in ERROR_KINDS:
        raise ConfigError(
            f"unknown reconstruction error '{kind}'; choose one of: {', '.join(ERROR_KINDS)}"
        )
    if x.shape != recon.shape:
        raise ConfigError(
            f"images {tuple(x.shape)} and reconstructions {tuple(recon.shape)} differ in shape"
        )
    if kind == "abs":
        error = (x - recon).abs()
    elif kind == "squared":
        error = (x - recon).pow(2)
    else:
        error = 1.0 - ssim_map(x, recon)
    return error.mean(dim=1)
