"""The trivial reference maps: mean-diff against a per-pixel loop, random's determinism."""

from __future__ import annotations

import pytest
import torch

from vaecam.errors import ConfigError
from vaecam.maps import build_map, compute_maps
from vaecam.maps.mean_diff import mean_image
from vaecam.models import build_model


def _model():
    torch.manual_seed(0)
    return build_model("mnist-vae", input_shape=(2, 8, 8), latent_dim=3, channels=(2, 3),
                       hidden=8)


def _images(n, seed):
    return torch.rand((n, 2, 8, 8), generator=torch.Generator().manual_seed(seed))


def test_mean_image_and_mean_diff_equal_a_per_pixel_loop():
    train = _images(7, seed=1)
    batches = [(train[:3], "label"), (train[3:],)]  # DataLoader-style tuples, uneven batches
    mean = mean_image(batches)
    x = _images(3, seed=2)
    maps = build_map("mean-diff", mean_image=mean)(_model(), x)
    for i in range(3):
        for r in range(8):
            for c in range(8):
                average = [sum(float(t[ch, r, c]) for t in train) / 7 for ch in range(2)]
                expected = sum(abs(float(x[i, ch, r, c]) - average[ch]) for ch in range(2)) / 2
                assert float(maps[i, r, c]) == pytest.approx(expected, abs=1e-6)
    torch.testing.assert_close(mean_image([train]), train.mean(dim=0))


def test_mean_diff_needs_a_mean_image_of_the_image_size():
    model, x = _model(), _images(2, seed=3)
    for method, needle in ((build_map("mean-diff"), "mean training image"),
                           (build_map("mean-diff", mean_image=torch.zeros(1, 8, 8)), "shape")):
        with pytest.raises(ConfigError, match=needle) as info:
            method(model, x)
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="no training images"):
        mean_image([])


def test_random_map_is_seeded_uniform_noise_per_image():
    model, x = _model(), _images(4, seed=4)
    first = build_map("random")(model, x)
    assert first.shape == (4, 8, 8) and 0 <= float(first.min()) and float(first.max()) < 1
    torch.testing.assert_close(build_map("random")(model, x), first)  # same call, same maps
    torch.testing.assert_close(build_map("random")(model, x[2:3])[0], first[2])  # any batch
    torch.testing.assert_close(build_map("random")(model, x.flip(0)), first.flip(0))
    assert not torch.equal(first[0], first[1])  # another image, other noise
    other = build_map("random", seed=1)
    assert other.label == "random(seed=1)"
    assert not torch.equal(other(model, x), first)
    noise = build_map("random")(model, _images(64, seed=5))
    assert abs(float(noise.mean()) - 0.5) < 0.02  # uniform on [0, 1): mean 1/2
    assert abs(float(noise.var()) - 1 / 12) < 0.01  # and variance 1/12
    with pytest.raises(ConfigError, match="integer >= 0"):
        build_map("random", seed=-1)


def test_references_share_a_call_with_model_maps():
    model, x = _model(), _images(3, seed=6)
    mean = mean_image([_images(5, seed=7)])
    maps = compute_maps(model, x, [build_map("recon-abs"), build_map("random"),
                                   build_map("mean-diff", mean_image=mean)])
    assert set(maps) == {"recon-abs", "random", "mean-diff"}
    torch.testing.assert_close(maps["mean-diff"], (x - mean).abs().mean(dim=1))
