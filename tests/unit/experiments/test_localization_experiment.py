"""The shared localisation pass: every map scored exactly, seeds aggregated, resolutions kept.

References are independent: maps from the engine and from ``compute_maps`` one setting at a
time, metrics from the one-shot functions of :mod:`vaecam.metrics.localization`.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from vaecam.attention import AttentionExplainer
from vaecam.data.transforms import downscale_masks
from vaecam.errors import ConfigError
from vaecam.experiments.localization.config import LocalizationConfig, resolve_layers
from vaecam.experiments.localization.evaluation import evaluate
from vaecam.experiments.localization.results import results_json
from vaecam.experiments.localization.run import evaluate_seeds, overlay_indices, subset_indices
from vaecam.maps import build_map, compute_maps
from vaecam.metrics.localization import aupro, best_iou, image_auroc, pixel_auroc
from vaecam.models import build_model

TINY = {"input_shape": [1, 24, 24], "latent_dim": 4, "channels": [4, 6, 8], "hidden": 16}


def _model(seed: int):
    torch.manual_seed(seed)
    return build_model("ucsd-vae", **TINY).eval()


def _data(n: int = 6, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 24, 24, generator=gen)
    masks = torch.zeros(n, 24, 24, dtype=torch.bool)
    masks[1:, 2:18, 4:20] = True  # image 0 is normal
    masks[2, 20:23, 1:4] = True  # a second region in image 2
    return x, masks


def _batches(x, masks, split: int = 4):
    return [(x[:split], masks[:split], ["c"] * split, torch.arange(split)),
            (x[split:], masks[split:], ["c"] * (len(x) - split), torch.arange(split, len(x)))]


def _train(n: int = 5):
    """Normal training images: what mean-diff averages."""
    return torch.rand(n, 1, 24, 24, generator=torch.Generator().manual_seed(99))


def _cfg(**kwargs):
    base = {"layers": {"conv1": "encoder.0", "conv3": "encoder.4"}, "maps": "ssim,attention",
            "n_resamples": 100}
    return LocalizationConfig(**{**base, **kwargs})


def test_streamed_metrics_equal_one_shot_metrics_of_every_map():
    model, (x, masks) = _model(0), _data()
    cfg = _cfg()
    settings = cfg.settings(model, mean_training_image=_train().mean(dim=0))
    names = [s.name for s in settings]
    assert names[:5] == ["recon-abs", "mean-diff", "random", "ssim", "attention conv1 m1 relu"]
    assert len(names) == 4 + 2 * 2 * 2
    labels = masks.flatten(1).any(dim=1)
    ev = evaluate(model, _batches(x, masks), settings, cfg, labels, [1, 5], progress=False)
    assert ev.n_images == 6 and ev.n_anomalous == 5
    for s in settings:
        maps = compute_maps(model, x, [s.method])[s.method.label]
        got = ev.metrics[s.name]
        assert got["pixel_auroc"] == pytest.approx(pixel_auroc(maps, masks))
        assert got["best_iou"] == pytest.approx(best_iou(maps, masks)[0])
        assert got["aupro"] == pytest.approx(aupro(maps, masks))
        assert got["image_auroc_max"] == pytest.approx(image_auroc(maps, masks))
        point = ev.bootstrap.settings[s.name].metrics["pixel_auroc"]
        assert point.ci95[0] - 0.05 <= point.point <= point.ci95[1] + 0.05
    engine = AttentionExplainer(model, "encoder.4", activation="abs").method2(x)
    torch.testing.assert_close(torch.stack(ev.overlays.maps["attention conv3 m2 abs"]),
                               engine[[1, 5]], atol=1e-6, rtol=1e-5)
    assert ev.overlays.titles == ["c/1", "c/5"] and set(ev.ms_per_image) == set(names)
    assert ev.latent["latent_dim"] == 4 and "collapsed" in ev.latent


def test_downscale_masks_scores_pixels_at_the_layer_and_regions_at_full_size():
    model, (x, masks) = _model(0), _data()
    cfg = _cfg(resize="downscale-masks", maps="attention", methods=("2",), activations=("abs",))
    settings = cfg.settings(model, mean_training_image=_train().mean(dim=0))
    labels = masks.flatten(1).any(dim=1)
    ev = evaluate(model, _batches(x, masks), settings, cfg, labels, progress=False)
    small = AttentionExplainer(model, "encoder.4", activation="abs", upsample=False).method2(x)
    assert small.shape[-2:] == (3, 3)
    small_masks = downscale_masks(masks, 3, 3, "majority")
    got = ev.metrics["attention conv3 m2 abs"]
    assert got["pixel_auroc"] == pytest.approx(pixel_auroc(small, small_masks))
    full = F.interpolate(small[:, None], size=(24, 24), mode="nearest")[:, 0]
    assert got["aupro"] == pytest.approx(aupro(full, masks))  # regions of the full masks
    image_labels = labels[:, None, None].expand(-1, 3, 3)  # the dataset's, not the small masks'
    assert got["image_auroc_max"] == pytest.approx(image_auroc(small, image_labels))


def test_seeds_are_scored_on_the_same_resamples_and_aggregate():
    x, masks = _data()
    labels = masks.flatten(1).any(dim=1)
    dataset = [(x[i], masks[i], "c", i) for i in range(len(x))]
    cfg = _cfg(maps="grad-kl", layers={"conv3": "encoder.4"})
    train = TensorDataset(_train())
    agg = evaluate_seeds({0: _model(0), 1: _model(1)}, dataset, labels, cfg,
                             {"eval_batch_size": 4, "overlays": 2, "device": "cpu",
                              "no_progress": True}, stats_sets={0: train, 1: train})
    assert list(agg.seeds) == [0, 1]
    cell = agg.cell("grad-kl", "pixel_auroc")
    exact = [agg.seeds[s].metrics["grad-kl"]["pixel_auroc"] for s in (0, 1)]
    assert cell["per_seed"] == pytest.approx(exact)
    assert cell["mean"] == pytest.approx(sum(exact) / 2)
    assert cell["std"] == pytest.approx(abs(exact[0] - exact[1]) / 2)
    assert cell["vs_baseline"]["verdict"] in ("better", "worse", "undecided")
    assert agg.cell("recon-abs", "pixel_auroc").get("vs_baseline") is None
    results = results_json(agg, cfg, {"note": "n"})
    assert [s["name"] for s in results["settings"]] == ["recon-abs", "mean-diff", "random",
                                                        "grad-kl"]
    assert results["settings"][3]["metrics"]["pixel_auroc"] == cell
    assert results["bootstrap"]["unit"] == "image" and results["bootstrap"]["n_units"] == 6
    assert results["bootstrap"]["scheme"] == "two-level"
    # mean-diff is |x - mean training image|, scored like any map
    mean_diff = (x - _train().mean(dim=0)).abs().mean(dim=1)
    assert agg.seeds[0].metrics["mean-diff"]["pixel_auroc"] == pytest.approx(
        pixel_auroc(mean_diff, masks))
    trivial = cell["vs_trivial"]
    assert trivial["reference"] in ("mean-diff", "random")
    better = max(("mean-diff", "random"),
                 key=lambda r: agg.cell(r, "pixel_auroc")["mean"])
    assert trivial["reference"] == better
    assert "vs_trivial" not in agg.cell(better, "pixel_auroc")


def test_attention_map_settings_share_work_but_keep_the_engines_values():
    model, (x, _) = _model(2), _data()
    for order in ("before", "after-upsample"):
        relu = build_map("attention", method="1", activation="relu", layer="encoder.2",
                         activation_order=order)
        absolute = build_map("attention", method="1", activation="abs", layer="encoder.2",
                             activation_order=order)
        maps = compute_maps(model, x, [relu, absolute])
        for method, act in ((relu, "relu"), (absolute, "abs")):
            engine = AttentionExplainer(model, "encoder.2", activation=act,
                                        activation_order=order).method1(x)
            torch.testing.assert_close(maps[method.label], engine, atol=1e-6, rtol=1e-5)


def test_layers_by_label_or_name_and_helpers():
    model = _model(0)
    assert resolve_layers(model, ["conv1", "encoder.4"]) == {"conv1": "encoder.0",
                                                                 "conv3": "encoder.4"}
    with pytest.raises(ConfigError, match=r"conv1 \(encoder.0\)"):
        resolve_layers(model, ["layer9"])
    with pytest.raises(ConfigError, match="--resize"):
        _cfg(resize="nearest")
    with pytest.raises(ConfigError, match="--resamples must be at least 100"):
        _cfg(n_resamples=50)
    with pytest.raises(ConfigError, match="unknown anomaly map 'nope'"):
        _cfg(maps="nope").settings(model)
    assert subset_indices(10, 4) == [0, 3, 6, 9] and subset_indices(3, None) == [0, 1, 2]
    assert overlay_indices(torch.tensor([False, True, True, False, True]), 2) == [1, 4]
