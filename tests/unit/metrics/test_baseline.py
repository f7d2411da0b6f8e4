"""Reconstruction-error baseline maps, SSIM checked against scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from vaecam.errors import ConfigError
from vaecam.maps.reconstruction_error import gaussian_filter, reconstruction_error, ssim_map


def _pair(shape: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=gen, dtype=torch.float64)
    noise = 0.2 * torch.randn(shape, generator=gen, dtype=torch.float64)
    return x, (x + noise).clamp(0, 1)


@pytest.mark.parametrize("sigma", [1.5, 0.8])
def test_gaussian_filter_matches_scipy_reflect(sigma):
    x, _ = _pair((1, 1, 9, 13))
    ours = gaussian_filter(x, sigma)[0, 0].numpy()
    ref = ndimage.gaussian_filter(x[0, 0].numpy(), sigma, mode="reflect", truncate=3.5)
    np.testing.assert_allclose(ours, ref, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 1, 20, 24), (1, 3, 16, 16), (1, 1, 11, 14)])
def test_ssim_map_matches_skimage_full(shape):
    x, y = _pair(shape)
    ours = ssim_map(x, y)
    for b in range(shape[0]):
        for c in range(shape[1]):
            _, ref = structural_similarity(
                x[b, c].numpy(), y[b, c].numpy(), data_range=1.0, gaussian_weights=True,
                sigma=1.5, use_sample_covariance=False, full=True,
            )
            np.testing.assert_allclose(ours[b, c].numpy(), ref, atol=1e-10)


def test_ssim_error_is_zero_for_identical_images_and_float32_works():
    x, _ = _pair((2, 3, 16, 16))
    err = reconstruction_error(x.float(), x.float(), "ssim")
    assert err.shape == (2, 16, 16) and err.dtype == torch.float32
    assert err.abs().max() < 1e-5


def test_abs_and_squared_errors_average_channels():
    x = torch.zeros(1, 3, 2, 2)
    recon = torch.zeros(1, 3, 2, 2)
    recon[0, 0, 0, 0] = 0.6  # one channel of one pixel differs
    torch.testing.assert_close(reconstruction_error(x, recon)[0, 0, 0], torch.tensor(0.2))
    torch.testing.assert_close(
        reconstruction_error(x, recon, "squared")[0, 0, 0], torch.tensor(0.12)
    )
    assert reconstruction_error(x, recon).sum() == pytest.approx(0.2)


def test_bad_kind_and_shapes_are_one_line_errors():
    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ConfigError, match="choose one of"):
        reconstruction_error(x, x, "l1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="differ in shape"):
        reconstruction_error(x, torch.zeros(1, 1, 4, 5))
