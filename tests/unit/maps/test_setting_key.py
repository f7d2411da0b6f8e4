"""The structured setting key: its label is the row label of results.json and the tables, the
parser and ``from_record`` invert it, and every map class expands into the settings a run
evaluates and tunes."""

from __future__ import annotations

import pytest

from vaecam.experiments.localization.config import LocalizationConfig
from vaecam.maps.registry import available_maps, latent_families, map_class, maps_help
from vaecam.maps.setting import Setting, SettingContext


@pytest.mark.parametrize(("setting", "label"), [
    (Setting("attention", "conv3", "2", "relu"), "attention conv3 m2 relu"),
    (Setting("attention", "layer2", "1", "abs"), "attention layer2 m1 abs"),
    (Setting("attention", "conv1", "normal-difference", "relu"), "attention conv1 nd relu"),
    (Setting("attention-x-recon", "conv2", "1", "relu"), "attention-x-recon conv2 m1 relu"),
    (Setting("grad-kl", options={"smooth_sigma": 2.0}), "grad-kl"),
    (Setting("recon-abs"), "recon-abs"),
])
def test_label_and_its_inverses(setting, label):
    assert setting.label() == label
    parsed = Setting.parse(label)
    assert (parsed.family, parsed.layer, parsed.method, parsed.activation) == (
        setting.family, setting.layer, setting.method, setting.activation)
    record = {"name": label, "family": setting.family, "layer": setting.layer,
              "method": setting.method, "activation": setting.activation}
    assert Setting.from_record(record).label() == label


def test_options_are_frozen_and_left_out_of_the_label():
    options = {"smooth_sigma": 1.0}
    setting = Setting("combi", options=options)
    options["smooth_sigma"] = 8.0
    assert setting.options == {"smooth_sigma": 1.0}
    with pytest.raises(TypeError):
        setting.options["smooth_sigma"] = 4.0  # type: ignore[index]
    assert Setting("combi", options={"smooth_sigma": 4.0}) != setting


def test_the_attention_grid_is_layer_x_method_x_activation():
    context = SettingContext({"conv1": "encoder.0", "conv2": "encoder.2"}, ("1", "2"),
                             ("relu", "abs"), grad_norm="rms-batch")
    labels = [s.label() for s in map_class("attention").settings(context)]
    assert labels == [f"attention {layer} m{m} {a}" for layer in ("conv1", "conv2")
                      for m in ("1", "2") for a in ("relu", "abs")]
    grad_norms = {s.method: s.options["grad_norm"] for s in map_class("attention").settings(
        context)}
    assert grad_norms == {"1": "none", "2": "rms-batch"}
    candidates = map_class("attention-x-recon").candidates(context)
    assert [c.label() for c in candidates] == [label.replace("attention", "attention-x-recon")
                                               for label in labels]


def test_the_run_reads_every_map_setting_from_the_map_classes():
    cfg = LocalizationConfig({"conv1": "encoder.0"}, maps="grad-kl,recon-smooth,projection",
                                 smooth_sigma=1.0)
    assert [s.name for s in cfg.settings(None)] == [
        "recon-abs", "mean-diff", "random", "grad-kl", "recon-smooth", "projection"]
    candidates = cfg.candidates(None)
    assert {f: [dict(c.key.options) for c in cs] for f, cs in candidates.items()} == {
        "grad-kl": [{"smooth_sigma": s} for s in (0.0, 1.0, 2.0, 4.0, 8.0)],
        "recon-smooth": [{"smooth_sigma": s} for s in (1.0, 2.0, 4.0, 8.0)],
        "projection": [{"steps": t, "distance_weight": w} for t in (5, 10) for w in (0.1, 0.3)],
    }
    cfg.apply_choice("grad-kl", candidates["grad-kl"], 3)
    assert cfg.chosen == {"grad-kl": {"smooth_sigma": 4.0}}
    grad_kl = next(s for s in cfg.settings(None) if s.family == "grad-kl")
    assert grad_kl.method.label == "grad-kl(smooth_sigma=4)"


def test_metadata_read_from_the_registry():
    assert latent_families() == ["attention", "attention-x-recon", "combi", "grad-kl",
                                 "projection"]
    text = maps_help()
    assert all(name in text for name in available_maps())
    assert "'cheap' (default) = all but projection" in text
