"""The shared localisation pass: maps equal the engine's, streaming metrics equal batch ones."""

from __future__ import annotations

import pytest
import torch

from vaecam.attention import AttentionExplainer
from vaecam.errors import ConfigError
from vaecam.experiments import localization as loc
from vaecam.metrics.baseline import reconstruction_error
from vaecam.metrics.localization import LocalizationEvaluator
from vaecam.models import build_model

TINY = {"input_shape": [1, 24, 24], "latent_dim": 4, "channels": [4, 6, 8], "hidden": 16}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("ucsd-vae", **TINY).eval()


def _batch(n: int = 5, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 24, 24, generator=gen)
    masks = torch.zeros(n, 24, 24, dtype=torch.bool)
    masks[1:, 2:18, 4:20] = True  # image 0 is normal
    return x, masks


@pytest.mark.parametrize("layer", ["encoder.0", "encoder.4"])
@pytest.mark.parametrize("grad_norm", ["none", "rms-image"])
def test_layer_maps_equal_the_engine_for_every_activation(model, layer, grad_norm):
    x, _ = _batch()
    cfg = loc.LocalizationConfig({"l": layer}, activations=("relu", "abs", "sigmoid"),
                                 grad_norm=grad_norm)
    signed = AttentionExplainer(model, layer, activation="none", upsample=False)
    maps = loc.layer_maps(signed, x, cfg)
    for act in cfg.activations:
        engine = AttentionExplainer(model, layer, activation=act)
        m1 = loc._finish(maps["1", act], (24, 24), cfg, display=False)
        m2 = loc._finish(maps["2", act], (24, 24), cfg, display=False)
        torch.testing.assert_close(m1, engine.method1(x), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(m2, engine.method2(x, grad_norm=grad_norm), atol=1e-6,
                                   rtol=1e-5)


def test_streamed_evaluation_equals_one_batch_and_downscales_masks(model):
    x, masks = _batch(6)
    cfg = loc.LocalizationConfig({"conv1": "encoder.0", "conv3": "encoder.4"},
                                 resize="downscale-masks")
    batches = [(x[:4], masks[:4], ["c"] * 4, torch.arange(4)),
               (x[4:], masks[4:], ["c"] * 2, torch.arange(4, 6))]
    ev = loc.evaluate(model, batches, cfg, overlay_indices=[1, 5])
    assert [s.name for s in ev.settings][:3] == ["baseline", "conv1 m1 relu", "conv1 m1 abs"]
    assert ev.n_images == 6 and ev.n_anomalous == 5 and ev.image_level
    reference = LocalizationEvaluator()
    with torch.no_grad():
        reference.update(reconstruction_error(x, model(x).recon), masks)
    assert ev.metrics["baseline"] == pytest.approx(reference.result())
    assert len(ev.overlays.images) == 2 and ev.overlays.titles == ["c/1", "c/5"]
    assert ev.overlays.maps["conv3 m2 abs"][0].shape == (24, 24)  # shown at input size
    table = loc.metrics_table(ev)
    assert "–" not in table and table.count("\n") == 2 + len(ev.settings)


def test_pixel_only_metrics_without_normal_images(model):
    x, masks = _batch(4)
    ev = loc.evaluate(model, [(x[1:], masks[1:], ["c"] * 3, torch.arange(3))],
                      loc.LocalizationConfig({"conv2": "encoder.2"}), image_level=False)
    assert set(ev.metrics["conv2 m2 relu"]) == {"pixel_auroc", "best_iou", "best_iou_threshold",
                                                "aupro"}


def test_layers_by_label_or_name_and_helpers(model):
    assert loc.resolve_layers(model, ["conv1", "encoder.4"]) == {"conv1": "encoder.0",
                                                                 "conv3": "encoder.4"}
    with pytest.raises(ConfigError, match=r"conv1 \(encoder.0\)"):
        loc.resolve_layers(model, ["layer9"])
    with pytest.raises(ConfigError, match="--resize"):
        loc.LocalizationConfig({"conv1": "encoder.0"}, resize="nearest")  # type: ignore[arg-type]
    assert loc.subset_indices(10, 4) == [0, 3, 6, 9] and loc.subset_indices(3, None) == [0, 1, 2]
    assert loc.overlay_indices(torch.tensor([False, True, True, False, True]), 2) == [1, 4]


def test_chunked_updates_give_the_same_metrics():
    gen = torch.Generator().manual_seed(3)
    scores = torch.rand(6, 8, 8, generator=gen)
    masks = torch.rand(6, 8, 8, generator=gen) > 0.7
    masks[0] = False
    whole, chunked = loc._Chunked(True, 0.3), loc._Chunked(True, 0.3, pixels=100)
    whole.update(scores, masks)
    for i in range(6):
        chunked.update(scores[i : i + 1], masks[i : i + 1])
    assert chunked.result() == pytest.approx(whole.result())
    assert loc.Setting("conv1", "normal-difference", "abs").name == "conv1 nd abs"
