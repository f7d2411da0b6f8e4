"""vaecam's per-dimension maps equal pytorch-grad-cam's GradCAM run once per latent unit.

GradCAM takes a model whose output rows are scores; a latent unit is ``ClassifierOutputTarget``
of the posterior mean. It min-max normalises each map at the layer's resolution, resizes and
normalises again; min-max is affine per map and bilinear resizing is linear, so that equals
vaecam's ``normalize=True`` maps (ReLU, upsampled, min-max).
"""

from __future__ import annotations

import pytest
import torch

from vaecam.attention import AttentionExplainer, PosteriorMean
from vaecam.models import build_model

grad_cam = pytest.importorskip("pytorch_grad_cam", reason="pytorch-grad-cam (grad-cam) is not "
                               "installed; it is a dev dependency")
targets = pytest.importorskip("pytorch_grad_cam.utils.model_targets")


@pytest.mark.parametrize("layer", ["encoder.0", "encoder.2"])
def test_per_dimension_maps_equal_gradcam_per_latent_unit(layer):
    torch.manual_seed(0)
    model = build_model("mnist-vae", input_shape=(1, 16, 16), latent_dim=4, channels=(6, 10),
                        hidden=20).eval()
    x = torch.rand(3, 1, 16, 16)
    ours = AttentionExplainer(model, layer, normalize=True).per_dimension(x)
    cam = grad_cam.GradCAM(model=PosteriorMean(model), target_layers=[model.get_submodule(layer)])
    for unit in range(4):
        theirs = cam(input_tensor=x, targets=[targets.ClassifierOutputTarget(unit)] * len(x))
        assert theirs.shape == (3, 16, 16) and theirs.max() > 0.5
        torch.testing.assert_close(ours[:, unit], torch.from_numpy(theirs), atol=2e-5, rtol=0)
