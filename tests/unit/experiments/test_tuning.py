"""Options chosen on training data: CutPaste anomalies and the choice among candidates."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from vaecam.data.anomalies import CHANGE, cut_paste
from vaecam.errors import ConfigError
from vaecam.experiments.localization.config import LocalizationConfig
from vaecam.experiments.localization.results import results_json
from vaecam.experiments.localization.run import evaluate_seeds
from vaecam.experiments.tuning import choose, tuning_set
from vaecam.maps import build_map, compute_maps
from vaecam.maps.reconstruction_error import gaussian_filter, reconstruction_error
from vaecam.metrics.localization import aupro, pixel_auroc
from vaecam.models import build_model


def _normals(n: int = 12) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 24, 24, generator=gen) * 0.2 + torch.linspace(0, 0.8, 24)


def test_cut_paste_changes_exactly_the_masked_pixels():
    normals = _normals()
    images, masks = cut_paste(normals, 10, seed=3)
    assert images.shape == (10, 1, 24, 24) and masks.shape == (10, 24, 24)
    assert all(m.any() for m in masks)
    for image, mask in zip(images, masks, strict=True):
        # outside the mask the image is a normal one (within the change threshold, which
        # pasted pixels that barely moved stay under); the masked pixels moved beyond it
        closest = min(normals, key=lambda n: float((n - image).abs()[:, ~mask].sum()))
        moved = (image - closest).abs().mean(dim=0)
        assert (moved[~mask] <= CHANGE).all() and (moved[mask] > CHANGE).all()
        assert (moved[~mask] == 0).float().mean() > 0.6
    again, _ = cut_paste(normals, 10, seed=3)
    assert torch.equal(images, again)
    with pytest.raises(ConfigError, match="at least 1"):
        cut_paste(normals, 0)


def test_recon_smooth_is_the_blurred_absolute_error():
    torch.manual_seed(0)
    model = build_model("mnist-vae", input_shape=[1, 16, 16], latent_dim=4, channels=[4, 8],
                        hidden=16).eval()
    x = torch.rand(3, 1, 16, 16)
    maps = build_map("recon-smooth", smooth_sigma=1.5)(model, x)
    with torch.no_grad():
        recon = model.decode(model.encode(x)[0])
    expected = gaussian_filter(reconstruction_error(x, recon, "abs")[:, None], 1.5)[:, 0]
    torch.testing.assert_close(maps, expected)


def test_choose_takes_the_best_candidate_on_the_synthetic_anomalies():
    torch.manual_seed(0)
    model = build_model("mnist-vae", input_shape=[1, 24, 24], latent_dim=4, channels=[4, 8],
                        hidden=16).eval()
    data = tuning_set(_normals(), n=8, seed=1)
    candidates = [build_map("recon-smooth", smooth_sigma=s) for s in (1.0, 4.0)]
    record = choose({"recon-smooth": {0: candidates}}, {0: model}, data)["recon-smooth"]
    scores = []
    for method in candidates:
        maps = compute_maps(model, data.images, [method])[method.label]
        scores.append(0.5 * (pixel_auroc(maps, data.masks) + aupro(maps, data.masks)))
    assert [c["mean"] for c in record["candidates"]] == pytest.approx(scores)
    assert record["best"] == int(scores[1] > scores[0])


def test_tuned_localisation_records_what_was_chosen_on_training_data():
    torch.manual_seed(0)
    model = build_model("ucsd-vae", input_shape=[1, 24, 24], latent_dim=4, channels=[4, 6, 8],
                        hidden=16).eval()
    x = torch.rand(6, 1, 24, 24)
    masks = torch.zeros(6, 24, 24, dtype=torch.bool)
    masks[1:, 4:12, 4:12] = True
    labels = masks.flatten(1).any(dim=1)
    cfg = LocalizationConfig({"conv3": "encoder.4"}, maps="recon-smooth,attention",
                                 n_resamples=100, tune=True, tune_images=6)
    dataset = [(x[i], masks[i], "c", i) for i in range(6)]
    agg = evaluate_seeds({0: model}, dataset, labels, cfg,
                             {"no_progress": True, "device": "cpu"},
                             stats_sets={0: TensorDataset(_normals())}, train_images=_normals())
    families = agg.tuning["families"]
    assert set(families) == {"recon-smooth", "attention"}
    assert cfg.chosen["recon-smooth"]["smooth_sigma"] in (1.0, 2.0, 4.0, 8.0)
    assert cfg.tuned_attention.startswith("attention conv3")
    results = results_json(agg, cfg, {})
    tuned = [s["name"] for s in results["settings"] if s["tuned"]]
    assert tuned == [cfg.tuned_attention, "recon-smooth"] or tuned == ["recon-smooth",
                                                                       cfg.tuned_attention]
    assert "CutPaste anomalies made from 12 training images" in results["tuning"]["data"]
