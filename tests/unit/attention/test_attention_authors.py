"""``activation_order="after-upsample"`` against the authors' method 2, transcribed plainly.

Source read: liuem607/expVAE, ``code/gradcam.py`` (commit 38a7706) with ``code/test_expVAE.py``
and ``code/model.py``. Their method 2: the score is ``sum(mu)`` (``encode_one_hot_batch`` returns
``mu``; ``flag = 2`` sums it) and is backpropagated once; the gradient at the output of
``encoder.2`` is divided by ``sqrt(mean(grad^2)) + 1e-5`` over the whole batch; the channel
weights are its spatial means (``AvgPool2d`` over the whole map); the map of each image is
``sum_k w_k A_k`` (a grouped ``conv3d``), upsampled bilinearly to the image size, then ``abs``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from attention_reference import capture_at

from vaecam.attention import AttentionExplainer
from vaecam.errors import ConfigError
from vaecam.models import build_model


def authors_method2(model, x, normalize_gradient=True):
    """The authors' formula, one image and one channel at a time."""
    activation, mu = capture_at(model, x, "encoder.2")
    (grads,) = torch.autograd.grad(mu.sum(), activation)
    if normalize_gradient:
        grads = grads / (torch.sqrt(torch.mean(grads**2)) + 1e-5)
    maps = []
    for b in range(x.shape[0]):
        gcam = torch.zeros(activation.shape[-2:])
        for k in range(activation.shape[1]):
            weight = grads[b, k].mean()
            gcam = gcam + weight * activation[b, k]
        gcam = F.interpolate(gcam[None, None], size=x.shape[-2:], mode="bilinear",
                             align_corners=False)
        maps.append(torch.abs(gcam)[0, 0])
    return torch.stack(maps).detach()


@pytest.fixture(scope="module")
def authors_model():
    torch.manual_seed(0)
    return build_model("mnist-vae")  # their ConvVAE: 1-64-128 convs, 28x28, latent 32


@pytest.mark.parametrize("normalize_gradient", [True, False])
def test_after_upsample_matches_the_authors_method2(authors_model, normalize_gradient):
    x = torch.rand(3, 1, 28, 28)
    expected = authors_method2(authors_model, x, normalize_gradient)
    explainer = AttentionExplainer(authors_model, "encoder.2", activation="abs",
                                   activation_order="after-upsample")
    got = explainer.method2(x, grad_norm="rms-batch" if normalize_gradient else "none")
    scale = expected.abs().max()
    assert scale > 1e-4
    torch.testing.assert_close(got, expected, atol=1e-5 * scale, rtol=1e-5)
    # vaecam's default order differs from the authors' wherever the signed map changes sign.
    before = AttentionExplainer(authors_model, "encoder.2", activation="abs").method2(
        x, grad_norm="rms-batch" if normalize_gradient else "none")
    assert (before - expected).abs().max() > 1e-3 * scale


def test_after_upsample_method1_is_the_mean_of_upsampled_activated_maps(authors_model):
    """Method 1 in the authors' order: each latent dim's signed map upsampled, then abs, then the
    mean over dims."""
    x = torch.rand(2, 1, 28, 28)
    signed = AttentionExplainer(authors_model, "encoder.2", activation="none",
                                upsample=False).per_dimension(x)
    upsampled = F.interpolate(signed, size=(28, 28), mode="bilinear", align_corners=False)
    expected = upsampled.abs().mean(dim=1)
    got = AttentionExplainer(authors_model, "encoder.2", activation="abs",
                             activation_order="after-upsample").method1(x)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_orders_agree_without_upsampling_and_unknown_order_is_refused(authors_model):
    x = torch.rand(2, 1, 28, 28)
    kwargs = {"activation": "abs", "upsample": False}
    before = AttentionExplainer(authors_model, "encoder.2", **kwargs).method1(x)
    after = AttentionExplainer(authors_model, "encoder.2", activation_order="after-upsample",
                               **kwargs).method1(x)
    torch.testing.assert_close(before, after)
    with pytest.raises(ConfigError, match="unknown activation order 'after'"):
        AttentionExplainer(authors_model, "encoder.2", activation_order="after")
