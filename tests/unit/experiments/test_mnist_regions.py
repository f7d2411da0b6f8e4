"""Evaluation regions of the MNIST protocols: the digit box on hand-made digits, the protocol
defaults, every anomalous pixel inside the box, the region carried through a localisation pass,
and the ``--region`` option of the CLI."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from vaecam.cli import main
from vaecam.data.mnist import load_digits
from vaecam.errors import ConfigError
from vaecam.experiments.localization.config import LocalizationConfig
from vaecam.experiments.localization.results import results_json
from vaecam.experiments.localization.run import evaluate_seeds
from vaecam.experiments.mnist import DigitAnomalies
from vaecam.experiments.mnist_regions import (
    BOX_MARGIN,
    digit_box,
    evaluation_region,
    region_name,
)
from vaecam.metrics.localization import aupro, pixel_auroc
from vaecam.models import build_model


def box_reference(image: torch.Tensor, margin: int) -> torch.Tensor:
    """Pixel by pixel: inside when some ink pixel (> 0.5) lies within ``margin`` rows and
    ``margin`` columns of the box spanned by all ink pixels."""
    height, width = image.shape
    ink = [(r, c) for r in range(height) for c in range(width) if image[r, c] > 0.5]
    top, bottom = min(r for r, _ in ink), max(r for r, _ in ink)
    left, right = min(c for _, c in ink), max(c for _, c in ink)
    out = torch.zeros(height, width, dtype=torch.bool)
    for r in range(height):
        for c in range(width):
            out[r, c] = (top - margin <= r <= bottom + margin
                         and left - margin <= c <= right + margin)
    return out


def test_digit_box_of_hand_made_digits():
    digits = torch.zeros(3, 1, 28, 28)
    digits[0, 0, 10:16, 12:15] = 1.0  # a short bar
    digits[0, 0, 5, 5] = 0.5  # faint: not ink (the threshold is > 0.5)
    digits[1, 0, 0:4, 25:28] = 0.9  # in a corner: the box is clipped to the image
    # digits[2] has no ink: every pixel
    box = digit_box(digits)
    expected = torch.zeros(28, 28, dtype=torch.bool)
    expected[10 - BOX_MARGIN : 16 + BOX_MARGIN, 12 - BOX_MARGIN : 15 + BOX_MARGIN] = True
    assert torch.equal(box[0], expected)
    assert torch.equal(box[0], box_reference(digits[0, 0], BOX_MARGIN))
    corner = torch.zeros(28, 28, dtype=torch.bool)
    corner[0 : 4 + BOX_MARGIN, 25 - BOX_MARGIN :] = True
    assert torch.equal(box[1], corner)
    assert bool(box[2].all())
    assert torch.equal(digit_box(digits, margin=0)[0], box_reference(digits[0, 0], 0))
    assert evaluation_region("image", digits) is None


def test_region_defaults_follow_the_protocol():
    assert region_name({}, "pasted") == "image"
    assert region_name({}, "erased") == "digit-box"
    assert region_name({"region": None}, "in-digit") == "digit-box"
    assert region_name({"region": "image"}, "erased") == "image"
    with pytest.raises(ConfigError, match="choose one of: image, digit-box"):
        region_name({"region": "ink"}, "erased")


@pytest.fixture(scope="module")
def digits():
    return load_digits("bundled")


@pytest.mark.parametrize("protocol", ["erased", "in-digit"])
def test_the_box_holds_every_anomalous_pixel_and_comes_from_the_clean_digit(digits, protocol):
    data = DigitAnomalies(digits, 3, 60, protocol)
    region = evaluation_region("digit-box", data.clean)
    assert not bool((data.masks & ~region).any())
    clean = ~data.labels
    assert torch.equal(data.clean[clean], data.images[clean])
    for i in range(3):  # the clean digit is the image without its anomaly
        restored = torch.where(data.masks[i], data.clean[i, 0], data.images[i, 0])
        assert torch.equal(restored, data.clean[i, 0])


def test_a_localisation_pass_scores_only_the_region():
    torch.manual_seed(0)
    model = build_model("ucsd-vae", input_shape=[1, 24, 24], latent_dim=4, channels=[4, 6, 8],
                        hidden=16).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 24, 24, generator=gen)
    masks = torch.zeros(6, 24, 24, dtype=torch.bool)
    masks[1:, 6:12, 6:12] = True
    masks[3, 20:23, 20:23] = True  # outside the region: not scored
    region = torch.zeros(6, 24, 24, dtype=torch.bool)
    region[:, 3:18, 2:19] = True
    train = torch.rand(5, 1, 24, 24, generator=torch.Generator().manual_seed(9))
    dataset = [(x[i], masks[i], "c", i) for i in range(6)]
    cfg = LocalizationConfig(layers={"conv3": "encoder.4"}, maps="grad-kl", n_resamples=100,
                                 region="digit-box")
    agg = evaluate_seeds({0: model}, dataset, masks.flatten(1).any(dim=1), cfg,
                             {"eval_batch_size": 4, "overlays": 0, "device": "cpu",
                              "no_progress": True}, stats_sets={0: TensorDataset(train)},
                             regions=region)
    mean_diff = (x - train.mean(dim=0)).abs().mean(dim=1)
    got = agg.seeds[0].metrics["mean-diff"]
    assert got["pixel_auroc"] == pytest.approx(pixel_auroc(mean_diff, masks, region))
    assert got["pixel_auroc"] != pytest.approx(pixel_auroc(mean_diff, masks))
    assert got["aupro"] == pytest.approx(aupro(mean_diff, masks, region=region))
    assert agg.cell("mean-diff", "pixel_auroc")["per_seed"] == pytest.approx(
        [got["pixel_auroc"]])
    assert results_json(agg, cfg, {})["switches"]["region"] == "digit-box"


def test_the_cli_refuses_an_unknown_region_in_one_line(tmp_path, capsys):
    code = main(["localize", "mnist", "--checkpoint", str(tmp_path), "--out",
                 str(tmp_path / "out"), "--anomaly", "erased", "--region", "ink"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert len(err) == 1 and err[0].startswith("vaecam: error: ") and "--region" in err[0]
    assert "image" in err[0] and "digit-box" in err[0]
    assert not (tmp_path / "out").exists()
