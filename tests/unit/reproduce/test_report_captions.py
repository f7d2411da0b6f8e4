"""Every word of the reproduce report that depends on the data is computed from it."""

from __future__ import annotations

from vaecam.reproduce import report


def _cell(mean, verdict="better", per_seed=None, ci=None):
    per_seed = per_seed if per_seed is not None else [mean - 0.01, mean + 0.01]
    return {"mean": mean, "std": 0.01, "per_seed": per_seed,
            "ci95": ci or [mean - 0.02, mean + 0.02], "vs_baseline": {"verdict": verdict}}


def _setting(name, family, auroc, aupro=0.5, tuned=False, **cell):
    return {"name": name, "label": name, "family": family, "tuned": tuned, "ms_per_image": 1.0,
            "metrics": {"pixel_auroc": _cell(auroc, **cell), "aupro": _cell(aupro)}}


def _results(tuned: bool, collapsed=()):
    settings = [_setting("recon-abs", "recon-abs", 0.70),
                _setting("attention conv1 m1 relu", "attention", 0.90),
                _setting("attention conv2 m2 abs", "attention", 0.60, tuned=tuned),
                _setting("ssim", "ssim", 0.80, tuned=tuned),
                _setting("grad-kl", "grad-kl", 0.5, per_seed=[0.5, 0.5], ci=[0.5, 0.5])]
    results = {"settings": settings, "collapsed_seeds": list(collapsed), "seeds": [0, 1],
               "note": "", "n_resamples": 100, "verdict_rule": "every seed agrees",
               "baseline": "recon-abs", "trivial_references": ["mean-diff", "random"],
               "bootstrap": {"unit": "clip", "n_units": 6, "scheme": "two-level"},
               "latent": {"0": {"kl": 1.0, "active_units": 0 if collapsed else 3,
                                "latent_dim": 4, "mu_std": 0.1, "collapsed": bool(collapsed)}},
               "switches": {"layers": {"conv1": "encoder.0", "conv2": "encoder.2",
                                       "conv3": "encoder.4"},
                            "methods": ["1", "2"], "activations": ["relu", "abs"]}}
    if tuned:
        results["tuning"] = {"data": "16 CutPaste anomalies", "criterion": "mean AUROC",
                             "families": {"attention": {}, "ssim": {}}}
    return results


def test_a_caption_calls_a_row_highest_only_if_it_is_the_maximum_of_its_column():
    rows = _results(tuned=False)["settings"]
    assert report.highest(rows)["name"] == "attention conv1 m1 relu"
    assert report.highest(rows, "aupro")["name"] in {s["name"] for s in rows}
    table, data = report.beyond_the_paper([("ucsd", "Ped2", _results(tuned=True))])
    shown = [s for s in _results(tuned=True)["settings"]
             if s["name"] in {"recon-abs", "attention conv2 m2 abs", "ssim", "grad-kl"}]
    assert data[0]["best_pixel_auroc_map"] == max(
        (s for s in shown if s["name"] != "grad-kl"), key=lambda s: s["metrics"][
            "pixel_auroc"]["mean"])["label"] == "ssim"


def test_a_constant_map_is_never_the_highest():
    constant = _setting("grad-kl", "grad-kl", 0.5, per_seed=[0.5, 0.5], ci=[0.5, 0.5])
    assert report.constant_map(constant["metrics"]["pixel_auroc"])
    assert not report.constant_map(_cell(0.5))  # 0.5 on average but varying: a result
    assert report.highest([constant]) is None
    below = _setting("grad-elbo", "grad-elbo", 0.3)
    assert report.highest([constant, below])["name"] == "grad-elbo"


def test_the_method_table_caption_says_which_data_chose_the_rows():
    for tuned, words in ((True, "chosen on 16 CutPaste anomalies"),
                         (False, "best setting on these test images")):
        results = _results(tuned)
        blocks = report._localization_blocks(results, report.Path("/nonexistent"), "Ped2")
        captions = [b.caption for b in blocks if isinstance(b, report.Table)]
        method = next(c for c in captions if "one setting per map" in c)
        assert words in method, method
        assert "grid's best" not in method
        assert ("chosen on training data" in report.selection_words(results)) is tuned


def test_figure_4_greys_and_marks_attention_cells_of_a_collapsed_latent():
    alive = report.figure4_table(_results(False), "UCSDped2", generated=False)
    dead = report.figure4_table(_results(False, collapsed=[0]), "UCSDped2", generated=False)
    assert "collapsed" not in alive.caption and "collapsed" in dead.caption
    conv2 = next(r for r in dead.rows if str(r[0]).startswith("conv2"))
    assert "collapsed latent" in conv2[0]
    assert {c.style for c in conv2[-4:]} == {"muted"}
    conv2_alive = next(r for r in alive.rows if r[0] == "conv2")
    assert conv2_alive[-1].style == "good"  # m2 abs: better, shown as such on a live latent
