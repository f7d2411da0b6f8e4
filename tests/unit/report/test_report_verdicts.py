"""Tables and claim verdicts read both verdicts: a win needs the baseline and the better trivial
reference beaten; degenerate maps read as such and are never a number."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from vaecam.metrics.bootstrap import aggregate_seeds, bootstrap_settings, resample_counts
from vaecam.report.localization import bootstrap_note, grid_table, method_table
from vaecam.reproduce.report import beyond_the_paper, claim2


def _results():
    """results.json-like data from two seeds' bootstraps of five maps on blob anomalies."""
    rng = np.random.default_rng(0)
    n, size = 16, 20
    field = ndimage.gaussian_filter(rng.standard_normal((n, size, size)), (0, 2, 2))
    masks = field > np.quantile(field.reshape(n, -1), 0.88, axis=1)[:, None, None]
    masks[12:] = False
    noise = rng.standard_normal((n, size, size)).astype(np.float32)
    maps = {
        "recon-abs": noise + 0.5 * masks,
        "mean-diff": noise + 1.0 * masks,
        "random": rng.random(masks.shape).astype(np.float32),
        "attention conv1 m1 relu": noise + 3.0 * masks,
        "grad-kl": np.zeros_like(noise),  # constant: degenerate
        "ssim": noise + 0.8 * masks,  # beats recon-abs, not mean-diff
    }
    counts = resample_counts(n, 200, strata=masks.reshape(n, -1).any(1))
    per_seed = [bootstrap_settings(maps, masks, "recon-abs", counts=counts) for _ in range(2)]
    cells = aggregate_seeds(per_seed, references=("mean-diff", "random"))
    families = {"attention conv1 m1 relu": "attention"}
    settings = [{"name": name, "family": families.get(name, name), "label": name,
                 "ms_per_image": 1.0, "metrics": cells["settings"][name]} for name in maps]
    return {"settings": settings, "seeds": [0, 1], "baseline": "recon-abs",
            "trivial_references": cells["trivial_references"], "bootstrap": cells["bootstrap"],
            "n_resamples": cells["n_resamples"], "verdict_rule": cells["verdict_rule"],
            "collapsed_seeds": [], "latent": {}, "tuning": {}, "switches": {"layers": {}}}


def test_tables_show_both_verdicts_and_degenerate_cells():
    results = _results()
    table = str(method_table(results)).splitlines()
    headers = [c.strip() for c in table[0].strip("|").split("|")]
    assert headers[-5:] == ["vs recon-abs pixel AUROC", "vs trivial pixel AUROC",
                            "vs recon-abs AUPRO", "vs trivial AUPRO", "ms / image"]
    rows = {line.split("|")[1].strip(): line for line in table[2:]}
    assert "better (vs mean-diff)" in rows["attention conv1 m1 relu"]
    assert "worse (vs mean-diff)" in rows["ssim"]
    assert "degenerate (constant over every image)" in rows["grad-kl"]
    assert "0.500" not in rows["grad-kl"]
    assert "degenerate" in str(grid_table(results))
    note = bootstrap_note(results)
    assert "two-level" in note and "test images" in note and "both verdicts" in note


def test_only_maps_beating_both_references_are_wins():
    results = _results()
    _, data = beyond_the_paper([("mvtec", "synthetic", results)])
    assert data[0]["wins"] == ["attention conv1 m1 relu"]  # ssim beats recon-abs only
    assert claim2([("mvtec", "synthetic", results)], generated=True).verdict == "reproduced"
    for setting in results["settings"]:  # the best attention now loses to mean-diff
        if setting["name"] == "attention conv1 m1 relu":
            setting["metrics"]["pixel_auroc"]["vs_trivial"]["verdict"] = "worse"
    verdict = claim2([("mvtec", "synthetic", results)], generated=True)
    assert verdict.verdict == "not reproduced" and "worse (vs mean-diff)" in verdict.evidence
