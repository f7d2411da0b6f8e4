"""Every cheap anomaly map against a slow, plain reference computed image by image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from vaecam.attention import AttentionExplainer, LatentStats
from vaecam.maps import build_map, compute_maps, parse_maps
from vaecam.maps.reconstruction_error import reconstruction_error
from vaecam.models import build_model


def _mnist(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    model = build_model("mnist-vae", input_shape=(1, 12, 12), latent_dim=4, channels=(3, 5),
                        hidden=16)
    return model.to(dtype)


def _ucsd_mse(dtype=torch.float64):
    torch.manual_seed(1)
    model = build_model("ucsd-vae", input_shape=(1, 16, 16), latent_dim=3, channels=(2, 3, 4),
                        hidden=8, loss="mse")
    return model.to(dtype)


def _resnet(dtype=torch.float64):
    torch.manual_seed(2)
    model = build_model("resnet18-vae", input_shape=(3, 64, 64), latent_dim=4, hidden=8,
                        decoder_channels=(8, 8, 4, 4, 4, 4))
    return model.to(dtype)


def _images(shape, dtype=torch.float64, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def plain_loss_terms(model, x, recon, mu, logvar, mse: bool):
    """KL and reconstruction loss of one image, written out."""
    kl = -0.5 * torch.sum(1 + logvar - mu**2 - torch.exp(logvar))
    rec = ((recon - x) ** 2).sum() if mse else F.binary_cross_entropy(recon, x, reduction="sum")
    return kl, rec


def reference_input_gradients(model, images, term, mse=False):
    """|d term / d x| mean over channels, one image at a time, model in eval mode: (B, H, W)."""
    model.eval()
    maps = []
    for i in range(images.shape[0]):
        x = images[i : i + 1].clone().requires_grad_(True)
        mu, logvar = model.encode(x)
        recon = model.decode(mu)
        kl, rec = plain_loss_terms(model, x, recon, mu, logvar, mse)
        loss = {"kl": kl, "recon": rec, "elbo": kl + rec}[term]
        (grad,) = torch.autograd.grad(loss, x)
        maps.append(grad.abs().mean(dim=1))
    return torch.cat(maps)


def scipy_smooth(maps, sigma):
    if sigma == 0:
        return maps
    out = [ndimage.gaussian_filter(m.numpy(), sigma, mode="reflect", truncate=3.5) for m in maps]
    return torch.from_numpy(np.stack(out))


def reference_recon(model, images):
    model.eval()
    with torch.no_grad():
        return torch.cat([model.decode(model.encode(x[None])[0]) for x in images])


GRADIENT_MAPS = {"grad-elbo": "elbo", "grad-kl": "kl", "grad-recon": "recon"}


@pytest.mark.parametrize("sigma", [0.0, 1.0])
@pytest.mark.parametrize("name", list(GRADIENT_MAPS))
def test_gradient_maps_match_per_image_autograd(name, sigma):
    model = _mnist()
    x = _images((4, 1, 12, 12))
    got = build_map(name, smooth_sigma=sigma)(model, x)
    ref = scipy_smooth(reference_input_gradients(model, x, GRADIENT_MAPS[name]), sigma)
    assert got.shape == (4, 12, 12)
    assert ref.abs().max() > 1e-6  # not trivially zero
    torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-12)


def test_gradient_maps_use_the_models_reconstruction_loss():
    model = _ucsd_mse()
    x = _images((3, 1, 16, 16), seed=1)
    maps = compute_maps(model, x, parse_maps("grad-elbo,grad-kl,grad-recon",
                                             {n: {"smooth_sigma": 0} for n in GRADIENT_MAPS}))
    for name, term in GRADIENT_MAPS.items():
        ref = reference_input_gradients(model, x, term, mse=True)
        torch.testing.assert_close(maps[f"{name}(smooth_sigma=0)"], ref, rtol=1e-9, atol=1e-12)


def test_gradient_maps_on_resnet_vae_in_eval_mode():
    """BatchNorm: maps must come from eval mode (batch-independent), even for a model in
    training mode, and equal the per-image reference."""
    model = _resnet()
    x = _images((2, 3, 64, 64), seed=2)
    model.train()
    maps = compute_maps(model, x, parse_maps("grad-elbo,grad-kl",
                                             {n: {"smooth_sigma": 0} for n in GRADIENT_MAPS}))
    assert model.training
    for name in ("grad-elbo", "grad-kl"):
        ref = reference_input_gradients(model, x, GRADIENT_MAPS[name])
        torch.testing.assert_close(maps[f"{name}(smooth_sigma=0)"], ref, rtol=1e-8, atol=1e-12)


def test_gradient_maps_channel_reduction_is_mean_of_abs():
    model = _resnet()
    x = _images((1, 3, 64, 64), seed=3)
    model.eval()
    xi = x.clone().requires_grad_(True)
    mu, logvar = model.encode(xi)
    kl, _ = plain_loss_terms(model, xi, model.decode(mu), mu, logvar, mse=False)
    (grad,) = torch.autograd.grad(kl, xi)
    got = build_map("grad-kl", smooth_sigma=0)(model, x)
    torch.testing.assert_close(got, (grad[:, 0].abs() + grad[:, 1].abs() + grad[:, 2].abs()) / 3)


@pytest.mark.parametrize("kind", ["recon-abs", "recon-sq", "ssim"])
def test_reconstruction_maps_equal_reconstruction_error(kind):
    model = _mnist()
    x = _images((3, 1, 12, 12))
    error = {"recon-abs": "abs", "recon-sq": "squared", "ssim": "ssim"}[kind]
    ref = reconstruction_error(x, reference_recon(model, x), error)
    torch.testing.assert_close(build_map(kind)(model, x), ref, rtol=1e-10, atol=1e-12)


def test_reconstruction_abs_written_out():
    model = _mnist()
    x = _images((2, 1, 12, 12))
    recon = reference_recon(model, x)
    torch.testing.assert_close(build_map("recon-abs")(model, x), (x - recon).abs()[:, 0])


ATTENTION_SETTINGS = [
    {},
    {"method": "2", "activation": "abs", "grad_norm": "rms-batch"},
    {"method": "2", "grad_norm": "rms-image", "layer": "encoder.0"},
    {"method": "1", "activation": "sigmoid", "normalize": True},
]


def _explainer_output(model, x, options):
    options = dict(options)
    method = options.pop("method", "1")
    grad_norm = options.pop("grad_norm", "none")
    stats = options.pop("stats", None)
    explainer = AttentionExplainer(model, options.pop("layer", "encoder.2"), **options)
    if method == "1":
        return explainer.method1(x)
    if method == "2":
        return explainer.method2(x, grad_norm=grad_norm)
    return explainer.normal_difference(x, stats)


@pytest.mark.parametrize("options", ATTENTION_SETTINGS)
def test_attention_map_equals_explainer(options):
    model = _mnist(dtype=torch.float32)
    x = _images((3, 1, 12, 12), torch.float32)
    got = build_map("attention", **options)(model, x)
    torch.testing.assert_close(got, _explainer_output(model, x, options), rtol=1e-5, atol=1e-7)


def test_attention_normal_difference_equals_explainer():
    model = _mnist(dtype=torch.float32)
    x = _images((3, 1, 12, 12), torch.float32)
    stats = LatentStats.from_batches(model, [_images((5, 1, 12, 12), torch.float32, seed=9)])
    options = {"method": "normal-difference", "stats": stats}
    got = build_map("attention", **options)(model, x)
    torch.testing.assert_close(got, _explainer_output(model, x, options), rtol=1e-5, atol=1e-7)


def per_image_min_max(maps):
    return torch.stack([(m - m.min()) / (m.max() - m.min()) for m in maps])


@pytest.mark.parametrize(
    ("options", "error"),
    [({}, "squared"), ({"smooth_sigma": 0.0}, "squared"), ({"error": "abs"}, "abs")],
)
def test_combi_is_error_times_smoothed_normalised_kl_gradient(options, error):
    model = _mnist()
    x = _images((3, 1, 12, 12), seed=4)
    sigma = options.get("smooth_sigma", 3.0)
    kl_grad = per_image_min_max(reference_input_gradients(model, x, "kl"))
    recon = reference_recon(model, x)
    err = ((x - recon) ** 2 if error == "squared" else (x - recon).abs())[:, 0]
    ref = err * scipy_smooth(kl_grad, sigma)
    torch.testing.assert_close(build_map("combi", **options)(model, x), ref, rtol=1e-9,
                               atol=1e-12)


def test_combi_batch_normalisation_is_the_authors_batch_wide_min_max():
    model = _mnist()
    x = _images((3, 1, 12, 12), seed=5)
    grad = reference_input_gradients(model, x, "kl")
    grad = (grad - grad.min()) / (grad.max() - grad.min())
    err = ((x - reference_recon(model, x)) ** 2)[:, 0]
    got = build_map("combi", normalize="batch", smooth_sigma=2.0)(model, x)
    torch.testing.assert_close(got, err * scipy_smooth(grad, 2.0), rtol=1e-9, atol=1e-12)
    raw = build_map("combi", normalize="none", smooth_sigma=0)(model, x)
    torch.testing.assert_close(raw, err * reference_input_gradients(model, x, "kl"))


@pytest.mark.parametrize(
    "options",
    [{}, {"floor": 0.0, "error": "squared"}, {"method": "2", "activation": "abs", "floor": 0.5}],
)
def test_attention_x_recon_formula(options):
    model = _mnist(dtype=torch.float32)
    x = _images((3, 1, 12, 12), torch.float32, seed=6)
    floor = options.get("floor", 0.1)
    attention_options = {k: v for k, v in options.items() if k not in ("floor", "error")}
    attention = per_image_min_max(_explainer_output(model, x, attention_options))
    error = reconstruction_error(x, reference_recon(model, x), options.get("error", "abs"))
    ref = error * (attention + floor) / (1 + floor)
    got = build_map("attention-x-recon", **options)(model, x)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-7)
    assert (got <= error + 1e-7).all()
