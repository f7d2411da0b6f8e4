"""The README's result tables are generated from the committed reports, by stated rules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("result_tables",
                                                  ROOT / "scripts" / "result_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["result_tables"] = module
    spec.loader.exec_module(module)
    return module


def _cell(mean, verdict="better", per_seed=None, ci=None, trivial=None):
    per_seed = per_seed if per_seed is not None else [mean, mean]
    cell = {"mean": mean, "std": 0.0, "per_seed": per_seed,
            "ci95": ci or [mean - 0.01, mean + 0.01], "vs_baseline": {"verdict": verdict}}
    if trivial:
        cell["vs_trivial"] = {"verdict": trivial, "reference": "mean-diff"}
    return cell


def _cells(**maps):
    cells = {"recon-abs": {"pixel_auroc": _cell(0.7, None), "aupro": _cell(0.5, None)}}
    cells.update(maps)
    return {"cells": cells, "collapsed_seeds": [], "seeds": [0, 1],
            "switches": {"chosen_on_training_data": {"ssim": {}}}}


def test_regenerating_the_readme_and_the_results_doc_changes_nothing(tables):
    for path, generated in tables.targets().items():
        text = path.read_text()
        assert tables.regenerate(text, generated) == text, (
            f"{path.name} is out of date: run python scripts/result_tables.py")


def test_a_dataset_table_shows_the_references_and_only_the_chosen_attention_setting(tables):
    cells = _cells(**{"mean-diff": {"pixel_auroc": _cell(0.6, "worse"),
                                    "aupro": _cell(0.4, "worse")},
                      "attention conv1 m1 abs": {
                          "pixel_auroc": _cell(0.8, "better", trivial="better"),
                          "aupro": _cell(0.6, "better", trivial="worse")},
                      "attention conv2 m2 relu": {"pixel_auroc": _cell(0.9),
                                                  "aupro": _cell(0.7)},
                      "ssim": {"pixel_auroc": _cell(0.75), "aupro": _cell(0.55)}})
    cells["switches"]["attention_chosen_on_training_data"] = "attention conv1 m1 abs"
    cells["latent"] = {"0": {"kl": 5.0, "active_units": 30, "latent_dim": 32},
                       "1": {"kl": 6.0, "active_units": 31, "latent_dim": 32}}
    text = tables.localisation_table(cells)
    assert text.startswith("Explained models (2 seeds): KL 5, 6 nats per test image; live units")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [row.split(" |")[0] for row in rows] == [
        "| `recon-abs`", "| `mean-diff`", "| `attention conv1 m1 abs` (chosen on training data)",
        "| `ssim`"]
    assert rows[2].endswith("| better / better | better / worse |")


def test_the_mnist_protocol_rows_name_protocol_region_and_wins(tables):
    def run(protocol_cells):
        return {"experiments": {"mnist": protocol_cells}, "stages": {}}

    cells = _cells(**{"mean-diff": {"pixel_auroc": _cell(0.6), "aupro": _cell(0.4)},
                      "recon-smooth": {"pixel_auroc": _cell(0.9, trivial="better"),
                                       "aupro": _cell(0.8, trivial="better")},
                      "attention conv1 m1 abs": {
                          "pixel_auroc": _cell(0.4, "worse", trivial="worse"),
                          "aupro": _cell(0.2, "worse", trivial="worse")}})
    cells["switches"].update(attention_chosen_on_training_data="attention conv1 m1 abs",
                             region="digit-box")
    cells["latent"] = {"0": {"kl": 5.0, "active_units": 30, "latent_dim": 32}}
    cells["cells"]["recon-abs"]["pixel_auroc"]["vs_trivial"] = {"verdict": "better"}
    cells["cells"]["recon-abs"]["aupro"]["vs_trivial"] = {"verdict": "better"}
    table = tables.mnist_protocols([run({"digit1_erased": cells})])
    row = table.splitlines()[-1]
    assert row.startswith("| 1 | erased | digit-box | live units 30 of 32 |")
    assert "| worse / worse; worse / worse | `recon-smooth` |" in row


def test_the_findings_table_is_within_the_first_60_lines_with_every_column(tables):
    head = tables.README.read_text().splitlines()[:60]
    header = next(i for i, line in enumerate(head) if line.startswith("| claim |"))
    assert {"paper", "seed reproduction", "verdict", "caveat"} <= {
        c.strip() for c in head[header].split("|")}
    assert any(line.startswith("| 3. ") for line in head), "every claim within 60 lines"


def test_highest_is_the_maximum_of_its_column_and_skips_constant_maps(tables):
    constant = {"pixel_auroc": _cell(0.5, "better", [0.5, 0.5], [0.5, 0.5]),
                "aupro": _cell(0.9)}
    cells = _cells(**{"ssim": {"pixel_auroc": _cell(0.8), "aupro": _cell(0.6)},
                      "recon-smooth": {"pixel_auroc": _cell(0.85), "aupro": _cell(0.4, "worse")},
                      "attention conv1 m1 relu": {"pixel_auroc": _cell(0.99),
                                                  "aupro": _cell(0.9)},
                      "grad-kl": constant})
    assert tables.highest_beyond_the_paper(cells) == "recon-smooth"  # not attention, not 0.99
    del cells["cells"]["recon-smooth"], cells["cells"]["ssim"]
    assert tables.highest_beyond_the_paper(cells) is None  # a constant map is never "highest"


def test_a_win_needs_both_verdicts_on_both_metrics(tables):
    cells = _cells(**{
        "ssim": {"pixel_auroc": _cell(0.8, trivial="better"),
                 "aupro": _cell(0.6, trivial="better")},
        "combi": {"pixel_auroc": _cell(0.8, trivial="better"),
                  "aupro": _cell(0.6, trivial="undecided")},
        "attention conv1 m1 abs": {"pixel_auroc": _cell(0.9, trivial="better"),
                                   "aupro": _cell(0.7, trivial="better")},
        "mean-diff": {"pixel_auroc": _cell(0.75, trivial="better"),
                      "aupro": _cell(0.55, trivial="better")}})
    cells["switches"]["trivial_references"] = ["mean-diff", "random"]
    cells["switches"]["attention_chosen_on_training_data"] = "attention conv1 m2 relu"
    # combi fails the trivial verdict on AUPRO; the reference is no win; an attention row of
    # the grid that was not the setting chosen on training data is not counted
    assert tables.wins(cells) == ["ssim"]
    cells["switches"]["attention_chosen_on_training_data"] = "attention conv1 m1 abs"
    assert tables.wins(cells) == ["ssim", "attention conv1 m1 abs"]


def test_claim_2_is_reproduced_only_against_both_references(tables):
    cells = _cells()
    assert tables.claim2_row_verdict(cells, _cell(0.9, trivial="better")) == (
        "reproduced (`better` than recon-abs and mean-diff)")
    assert tables.claim2_row_verdict(cells, _cell(0.9, trivial="worse")) == (
        "not reproduced (`better` vs recon-abs, `worse` vs mean-diff)")
    assert tables.claim2_row_verdict(cells, _cell(0.9, trivial="undecided")) == (
        "inconclusive (`better` vs recon-abs, `undecided` vs mean-diff)")
    # a run from before the trivial references says so
    assert tables.claim2_row_verdict(cells, _cell(0.6, "worse")) == "not reproduced (`worse`)"
    assert "no trivial reference" in tables.claim2_row_verdict(cells, _cell(0.9))
    cells["collapsed_seeds"] = [0]
    assert tables.claim2_row_verdict(cells, _cell(0.9, trivial="better")) == (
        "no evidence (latent collapsed)")


def test_claim_1_reads_the_interval_against_chance(tables):
    assert tables.claim1_row_verdict(_cell(0.6, "worse", ci=[0.51, 0.7])).startswith(
        "reproduced: above chance")
    assert tables.claim1_row_verdict(_cell(0.6, "worse", ci=[0.49, 0.7])).startswith(
        "not reproduced")


def test_a_block_without_a_generator_or_a_generator_without_a_block_is_an_error(tables):
    block = "<!-- BEGIN generated: {0} -->\nold\n<!-- END generated: {0} -->\n"
    assert tables.regenerate("a\n" + block.format("x"), {"x": "new"}) == (
        "a\n" + block.format("x").replace("old", "new"))
    with pytest.raises(KeyError):
        tables.regenerate(block.format("y"), {"x": "new"})
    with pytest.raises(KeyError):
        tables.regenerate(block.format("x"), {"x": "new", "z": "more"})


def test_the_mnist_caveat_names_the_data_its_training_settings_were_chosen_on(tables):
    def report(lr, batch):
        return {"stages": {"mnist/digit1/seed0": {"kind": "train", "config": {
            "lr": lr, "batch_size": batch}}}}

    assert tables.mnist_training(report(3e-4, 128), "digit1_erased") == (
        "lr 0.0003 and batch 128 chosen on held-out training digits")
    assert tables.mnist_training(report(0.001, 128), "digit1") == (
        "lr 0.001 and batch 128 chosen on the test digits (sensitivity study)")


def test_the_claim3_row_shows_both_arms_the_paired_interval_wilcoxon_and_the_verdict(tables):
    test = {"n": 10, "mean_diff": 0.05, "std": 0.04, "ci95": [0.026, 0.074], "p_value": 0.00586,
            "verdict": "better"}
    report = {"data": {"dsprites": "procedural"},
              "experiments": {"dsprites": {
                  "runs": [{"gamma": 40.0, "steps": 5000}],
                  "paired": [{"gamma": 40.0, "ad-factorvae": {"mean": 0.65, "std": 0.03},
                              "factorvae": {"mean": 0.6, "std": 0.02}, "test": test}]}}}
    (row,) = tables._claim3_rows(report)
    assert row[0] == "3. the AD loss improves disentanglement (dSprites, gamma 40)"
    assert row[3] == ("AD-FactorVAE 0.650 ± 0.030 vs FactorVAE 0.600 ± 0.020; paired difference "
                      "+0.050 ± 0.040 [+0.026, +0.074], 10 seeds; Wilcoxon p 0.00586")
    assert row[4] == "reproduced"
    assert row[5].startswith("procedural dSprites-like renderer, not the official .npz; "
                             "5,000 instead of 300,000 steps")
    test.update(p_value=None, verdict="undecided")
    assert tables._claim3_rows(report)[0][4] == "inconclusive (`undecided`)"
    assert "Wilcoxon" not in tables._claim3_rows(report)[0][3]


def test_the_claim3_block_lists_each_model_the_across_seed_test_and_every_seed(tables):
    test = {"n": 2, "mean_diff": 0.05, "std": 0.01, "ci95": [0.04, 0.06], "p_value": 0.5,
            "min_p": 0.5, "wilcoxon_statistic": 0.0, "verdict": "undecided",
            "reason": "2 seeds: a verdict needs at least 6"}
    summary = [{"model": "factorvae", "gamma": 40.0, "runs": 2, "factorvae_mean": 0.6,
                "factorvae_std": 0.02, "mig_mean": 0.03, "recon_mean": 70.04},
               {"model": "ad-factorvae", "gamma": 40.0, "runs": 2, "factorvae_mean": 0.65,
                "factorvae_std": 0.01, "mig_mean": 0.04, "recon_mean": 66.0}]
    per_seed = [{"seed": s, "ad-factorvae": a, "factorvae": b, "diff": a - b,
                 "metric_ci95": [a - b - 0.09, a - b + 0.09]}
                for s, a, b in ((0, 0.66, 0.62), (1, 0.64, 0.58))]
    report = {"experiments": {"dsprites": {"summary": summary, "paired": [
        {"gamma": 40.0, "ad-factorvae": {"mean": 0.65, "std": 0.01},
         "factorvae": {"mean": 0.6, "std": 0.02}, "test": test, "per_seed": per_seed}]}}}
    text = tables.claim3_tables(report)
    assert "| factorvae | 40 | 2 | 0.600 ± 0.020 | 0.030 | 70.0 |" in text
    assert "| 40 | 2 | 0.650 ± 0.010 | 0.600 ± 0.020 | +0.050 ± 0.010 |" in text
    assert "undecided (2 seeds: a verdict needs at least 6)" in text
    assert "| 40 | 1 | 0.640 | 0.580 | +0.060 |" in text
