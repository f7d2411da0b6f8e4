"""Figures are saved small enough to embed many of them in a report."""

from __future__ import annotations

import numpy as np
from PIL import Image

from vaecam.viz import overlays


def _figure(noisy: bool):
    fig, ax = overlays.plt.subplots(figsize=(12, 4))
    rng = np.random.default_rng(0)
    ax.imshow(rng.random((300, 900)) if noisy else np.zeros((30, 90)), cmap="jet")
    return fig


def test_a_large_png_is_stored_with_a_palette_and_a_small_one_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(overlays, "PALETTE_ABOVE_BYTES", 10**9)
    raw = overlays.save(_figure(noisy=True), tmp_path / "raw.png").stat().st_size
    monkeypatch.setattr(overlays, "PALETTE_ABOVE_BYTES", 50_000)
    big = overlays.save(_figure(noisy=True), tmp_path / "noisy.png")
    small = overlays.save(_figure(noisy=False), tmp_path / "flat.png")
    with Image.open(big) as image:
        assert image.mode == "P" and image.size == (1440, 480)
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    with Image.open(tmp_path / "raw.png") as image:
        original = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert big.stat().st_size < 0.6 * raw
    # the same figure, alike to the eye: on this worst case (pure noise through 'jet') the mean
    # colour error is about 4 of 255 and 99.9% of values are within 33; lost content gives ~100
    error = np.abs(rgb - original)
    assert error.mean() < 8 and np.percentile(error, 99.9) < 64
    with Image.open(small) as image:
        assert image.mode == "RGBA"
