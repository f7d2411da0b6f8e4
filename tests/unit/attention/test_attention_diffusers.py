"""A diffusers ``AutoencoderKL`` from a tiny local config, explained without a wrapper.

Its ``encode`` returns an output whose ``latent_dist`` holds a ``2 x 8 x 8`` latent; the maps
must equal the per-unit reference (one ``autograd.grad`` per flat latent unit, Eq. 1-2).
"""

from __future__ import annotations

import pytest
import torch
from attention_reference import per_dimension_of

from vaecam.attention import AttentionExplainer, LatentLayout, encoder_layer_names

diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (a dev "
                                "dependency: pip install diffusers)")

pytestmark = pytest.mark.slow  # importing diffusers takes several seconds


def _tiny_vae():
    torch.manual_seed(0)
    return diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=2, norm_num_groups=4, sample_size=16,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16), layers_per_block=1,
    ).eval()


@pytest.mark.parametrize("layer", ["encoder.conv_in", "encoder.down_blocks.1.resnets.0.conv2"])
def test_autoencoder_kl_maps_equal_the_per_unit_reference(layer):
    vae, x = _tiny_vae(), torch.rand(2, 3, 16, 16)
    explainer = AttentionExplainer(vae, layer, chunk_size=48)
    layout = explainer.latent_layout(x)
    assert layout == LatentLayout((2, 8, 8))
    ref = per_dimension_of(vae.get_submodule(layer),
                           lambda t: vae.encode(t).latent_dist.mean.flatten(1), x)
    assert ref.shape == (2, 128, 16, 16) and ref.abs().max() > 1e-6
    torch.testing.assert_close(explainer.per_dimension(x), ref, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(explainer.method1(x), ref.mean(1), atol=1e-6, rtol=1e-4)
    channel = explainer.method1(x, dims=layout.units(channel=1))
    torch.testing.assert_close(channel, ref[:, 64:].mean(1), atol=1e-6, rtol=1e-4)
    spot = explainer.per_dimension(x, dims=[layout.index(0, 4, 7)])
    torch.testing.assert_close(spot[:, 0], ref[:, 4 * 8 + 7], atol=1e-6, rtol=1e-4)


def test_encoder_layer_names_leave_out_the_decoder():
    vae = _tiny_vae()
    names = encoder_layer_names(vae, torch.rand(1, 3, 16, 16))
    assert names[0] == "encoder.conv_in" and "quant_conv" in names
    assert not any(name.startswith(("decoder", "post_quant")) for name in names)
