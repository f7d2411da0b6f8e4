"""The dSprites summary: per-model means, AD-FactorVAE against FactorVAE across seeds, the cost
printed before training; on hand-made score rows (no training)."""

import json

import numpy as np
import pytest

from vaecam.configs import load_preset
from vaecam.experiments import dsprites
from vaecam.metrics.paired import paired_seed_test

BASE_SCORES = [0.60, 0.55, 0.64, 0.58, 0.61, 0.66, 0.57, 0.59, 0.62, 0.63]
GAINS = [0.09, 0.05, 0.11, 0.07, 0.08, 0.06, 0.10, 0.12, 0.04, 0.08]


def row(model, gamma, seed, score):
    return {"model": model, "gamma": gamma, "train_seed": seed, "steps": 100,
            "factorvae": score, "mig": 0.05, "recon_error": 70.0 + seed,
            "metric_sizes": {"num_eval": 200}}


def rows_for(gamma, base, gains):
    rows = [row("factorvae", gamma, s, b) for s, b in enumerate(base)]
    rows += [row("ad-factorvae", gamma, s, b + g)
             for s, (b, g) in enumerate(zip(base, gains, strict=True))]
    return rows


def test_paired_by_gamma_is_the_seed_test_of_the_paired_scores():
    mixed = [0.05, -0.04, 0.02, -0.06, 0.03]
    rows = rows_for(40.0, BASE_SCORES, GAINS) + rows_for(20.0, BASE_SCORES[:5], mixed)
    rows.append(row("factorvae", 40.0, 11, 0.9))  # no AD-FactorVAE partner: left out
    paired = {p["gamma"]: p for p in dsprites.paired_by_gamma(rows, resamples=500, seed=2)}

    p40 = paired[40.0]
    assert p40["seeds"] == list(range(10))
    ad = np.add(BASE_SCORES, GAINS)
    expected = paired_seed_test(ad, BASE_SCORES, resamples=500, seed=2).to_dict()
    assert p40["test"] == expected and p40["verdict"] == "better"
    assert p40["ad-factorvae"]["mean"] == pytest.approx(ad.mean())
    assert p40["factorvae"]["std"] == pytest.approx(np.std(BASE_SCORES, ddof=1))
    assert [d["diff"] for d in p40["per_seed"]] == pytest.approx(GAINS)
    assert all(lo < d["diff"] < hi for d in p40["per_seed"] for lo, hi in [d["metric_ci95"]])

    p20 = paired[20.0]
    assert p20["test"]["n"] == 5 and p20["verdict"] == "undecided"
    assert p20["test"]["min_p"] == pytest.approx(0.0625)  # 5 seeds can never reach p < 0.05

    lone = dsprites.paired_by_gamma(rows_for(40.0, [0.6], [0.1]))[0]
    assert lone["verdict"] == "undecided" and lone["factorvae"]["std"] is None
    assert dsprites.verdict_cell(lone["test"]).startswith("undecided (1 seed(s)")


def test_summary_files_show_means_interval_wilcoxon_and_verdict(tmp_path):
    rows = rows_for(40.0, BASE_SCORES, GAINS)
    written = dsprites.write_summary(tmp_path, rows, "table.md", "dSprites summary")
    results = json.loads((tmp_path / "results.json").read_text())
    test = results["paired"][0]["test"]
    assert test["n"] == 10 and test["verdict"] == "better" and test["ci95"][0] > 0
    assert test["p_value"] == pytest.approx(2 / 2**10)
    summary = {s["model"]: s for s in results["summary"]}
    assert summary["factorvae"]["factorvae_std"] == pytest.approx(np.std(BASE_SCORES, ddof=1))
    text = written["markdown"].read_text()
    lo, hi = test["ci95"]
    assert f"| 40 | 10 | {np.mean(BASE_SCORES) + np.mean(GAINS):.3f} ± " in text
    assert f"[{lo:.3f}, {hi:.3f}]" in text
    assert "| 0.00195 (smallest possible 0.00195) | better |" in text
    assert "### Per seed" in text and text.count("| 40 | ") == 1 + 10
    assert (tmp_path / "figure5b.png").stat().st_size > 0


def test_cost_line_from_the_preset_estimates():
    cpu = load_preset("dsprites", "cpu").options
    assert cpu["seeds"] == list(range(10))
    line = dsprites.cost_line("cpu", cpu["models"], cpu["gammas"], cpu["seeds"])
    assert line == ("dSprites cpu: 20 runs (2 models x 1 gamma x 10 seeds) x ~32 min 30 s "
                    "(train + score) = ~10 h 50 min 00 s at the preset's estimate")
    partly = dsprites.cost_line("cpu", cpu["models"], cpu["gammas"], cpu["seeds"], finished=6)
    assert partly.endswith("; 6 already done, ~7 h 35 min 00 s left")
    train_only = dsprites.cost_line("cpu", ["factorvae"], [40.0], [0, 1, 2], scored=False)
    assert train_only.startswith("dSprites cpu: 3 runs (1 model x 1 gamma x 3 seeds) x "
                                 "~30 min 00 s (train) = ~1 h 30 min 00 s")
