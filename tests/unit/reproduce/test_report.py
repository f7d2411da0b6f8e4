"""The report of ``vaecam reproduce``, built from a finished run whose stages only wrote their
results: the MNIST and MVTec-AD localisations are small hand-built ``results.json`` files, the
UCSD one is the real UCSDped2 result kept in the documentation. Every word that depends on the
data must say what the data says."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from vaecam.errors import DataError
from vaecam.reproduce import report
from vaecam.reproduce.plan import Request, build_plan
from vaecam.reproduce.stages import StageRunner

DOCS = Path(__file__).resolve().parents[3] / "docs" / "report" / "ped2_live"
LAYERS = {"conv2": "encoder.3", "conv1": "encoder.0"}  # the first one is method 1's layer
CONSTANT = "constant over every image"


def _cell(mean: float, lo: float, hi: float, vs_baseline: str | None = "better",
          vs_trivial: str | None = "better", per_seed: list | None = None,
          degenerate_seeds: list | None = None) -> dict[str, Any]:
    cell: dict[str, Any] = {"mean": mean, "std": 0.01, "ci95": [lo, hi],
                            "per_seed": per_seed or [mean - 0.01, mean + 0.01],
                            "degenerate_seeds": degenerate_seeds or []}
    if vs_baseline:
        cell["vs_baseline"] = {"reference": "recon-abs", "verdict": vs_baseline}
    if vs_trivial:
        cell["vs_trivial"] = {"reference": "mean-diff", "verdict": vs_trivial}
    return cell


def _degenerate() -> dict[str, Any]:
    """A map constant on every image of every seed: no mean, degenerate verdicts."""
    return {"per_seed": [None, None], "degenerate_seeds": [0, 1], "degenerate": CONSTANT,
            "vs_baseline": {"reference": "recon-abs", "verdict": "degenerate"},
            "vs_trivial": {"reference": "mean-diff", "verdict": "degenerate"}}


def _setting(family: str, pixel: dict, layer: str = "", method: str = "",
             activation: str = "", tuned: bool = False, aupro: dict | None = None
             ) -> dict[str, Any]:
    label = " ".join(filter(None, [family, layer, method and f"m{method}", activation]))
    aupro = aupro or pixel
    return {"name": label, "label": label, "family": family, "layer": layer, "method": method,
            "activation": activation, "tuned": tuned, "ms_per_image": 2.0,
            "metrics": {"pixel_auroc": pixel, "aupro": aupro, "best_iou": pixel}}


def _synthetic(tuned: bool) -> dict[str, Any]:
    """Two seeds of a localisation: recon-abs 0.70 [0.66, 0.74]; method 1 ReLU at the first
    layer lies above it (better); method 2 abs lies below (worse); the highest pixel AUROC of
    the attention grid is ``conv1 m1 relu`` (0.90); grad-kl is degenerate on every seed and
    recon-smooth on seed 1. Seed 1's encoder has a dead layer. With ``tuned`` the setting of
    each map was chosen on training data: for attention, ``conv2 m1 relu``, not the test
    maximum."""
    settings = [
        _setting("recon-abs", _cell(0.70, 0.66, 0.74, vs_baseline=None)),
        _setting("mean-diff", _cell(0.60, 0.55, 0.65, "worse", None)),
        _setting("random", _cell(0.50, 0.49, 0.51, "worse", "worse")),
        _setting("attention", _cell(0.85, 0.81, 0.89), "conv2", "1", "relu", tuned=tuned),
        _setting("attention", _cell(0.65, 0.61, 0.69, "worse", "undecided"), "conv2", "2",
                 "abs"),
        _setting("attention", _cell(0.90, 0.70, 0.99, "undecided", "undecided"), "conv1", "1",
                 "relu"),
        _setting("attention", _cell(0.55, 0.50, 0.60, "worse", "worse"), "conv1", "2", "abs"),
        _setting("grad-kl", _degenerate()),
        _setting("recon-smooth", _cell(0.72, 0.70, 0.74, "undecided", "better",
                                       per_seed=[0.72, None], degenerate_seeds=[1])),
    ]
    latent = {"0": {"kl": 12.5, "active_units": 5, "latent_dim": 8, "mu_std": 0.8,
                    "collapsed": False, "hidden_alive": 0.9, "hidden_layer": "encoder.0",
                    "hidden_kind": "Conv2d"},
              "1": {"kl": 11.0, "active_units": 4, "latent_dim": 8, "mu_std": 0.7,
                    "collapsed": False, "hidden_alive": 0.1, "hidden_layer": "encoder.3",
                    "hidden_kind": "Conv2d"}}
    results = {"note": "Synthetic localisation.", "seeds": [0, 1], "n_images": 12,
               "n_resamples": 200, "baseline": "recon-abs",
               "trivial_references": ["mean-diff", "random"],
               "verdict_rule": "better when the interval of the difference lies above 0",
               "bootstrap": {"unit": "image", "n_units": 12, "scheme": "two-level"},
               "latent": latent, "collapsed_seeds": [], "settings": settings,
               "switches": {"layers": LAYERS, "methods": ["1", "2"],
                            "activations": ["relu", "abs"]}}
    if tuned:
        results["tuning"] = {"data": "16 CutPaste anomalies of training images",
                             "criterion": "mean pixel AUROC",
                             "families": {"attention": {}}}
    return results


def _results_for(name: str) -> dict[str, Any] | None:
    """What each localize stage of the run wrote."""
    if name.startswith("ucsd/"):
        return json.loads((DOCS / "results.json").read_text())
    if name.startswith("mvtec/"):
        return _synthetic(tuned=True)
    return _synthetic(tuned=False)


def _run(out: Path, fail: str = "") -> tuple[Any, StageRunner]:
    """A smoke run of MNIST, UCSD and MVTec-AD whose stages only write their results (the
    UCSD figures copied from the documentation); stage ``fail`` fails."""
    plan = build_plan(Request("smoke", out, only=["mnist", "ucsd", "mvtec"]))

    def stage_run(name: str):
        def run() -> dict[str, Any]:
            if name == fail:
                raise DataError("the test images could not be read")
            folder = plan.out / name
            results = _results_for(name) if plan.stage(name).kind == "localize" else None
            if results is None:
                return {"outputs": []}
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "results.json").write_text(json.dumps(results))
            if name.startswith("ucsd/"):
                shutil.copy(DOCS / "roc.png", folder / "roc.png")
            return {"outputs": [str(folder / "results.json")]}
        return run

    stages = [dataclasses.replace(s, run=stage_run(s.name)) for s in plan.stages]
    runner = StageRunner(plan.out, announce=lambda line: None, data=plan.discovery.root)
    runner.run_all(stages)
    return plan, runner


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The run's report.md, report.html and results.json, as text, and the output folder."""
    out = tmp_path_factory.mktemp("reproduce") / "out"
    plan, runner = _run(out)
    files = report.write(plan, runner, f"vaecam reproduce --preset smoke --out {out}")
    return {"md": files.markdown.read_text(), "html": files.html.read_text(),
            "json": files.results.read_text(), "out": plan.out}


# --- reading the Markdown report -------------------------------------------------------------


def _section(md: str, title: str) -> str:
    """The text under the heading ``title`` up to the next heading of the same or higher
    level."""
    lines = md.splitlines()
    start = next(k for k, line in enumerate(lines)
                 if line.startswith("#") and line.lstrip("#").strip() == title)
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    end = next((k for k in range(start + 1, len(lines)) if lines[k].startswith("#")
                and len(lines[k]) - len(lines[k].lstrip("#")) <= level), len(lines))
    return "\n".join(lines[start:end])


def _tables(text: str) -> list[list[dict[str, str]]]:
    """Every Markdown table of ``text`` as rows of header -> cell text."""
    tables, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split(" | ")])
        elif block:
            header, _, *rows = block
            tables.append([dict(zip(header, row, strict=True)) for row in rows])
            block = []
    return tables


def _table(text: str, first_header: str) -> list[dict[str, str]]:
    return next(t for t in _tables(text) if t and next(iter(t[0])) == first_header)


def _row(table: list[dict[str, str]], first_cell: str) -> dict[str, str]:
    return next(r for r in table if next(iter(r.values())) == first_cell)


def _column(table: list[dict[str, str]], header: str) -> dict[str, str]:
    """First cell of each row -> its cell under ``header``."""
    return {next(iter(r.values())): r[header] for r in table}


def _mean(text: str) -> float:
    return float(text.split()[0])


# --- sections --------------------------------------------------------------------------------


def test_the_report_has_a_section_per_experiment_and_dataset_in_both_renderings(written):
    titles = ["Summary", "Beyond the paper", "MNIST (claim 1)", "Trained on 1", "Trained on 3",
              "UCSD pedestrians (claim 2)", "UCSDped1", "MVTec-AD (claim 2)", "synthetic",
              "Stages", "How to rerun"]
    headings = [line.lstrip("#").strip() for line in written["md"].splitlines()
                if line.startswith("## ") or line.startswith("### ")]
    assert [h for h in headings if h in titles] == titles
    for title in titles:
        assert f">{title}</h" in written["html"]
    stages = _table(_section(written["md"], "Stages"), "stage")
    assert _column(stages, "status") == {
        name: "done" for name in ("data/ucsd", "data/mvtec", "mnist/digit1/seed0",
                                  "mnist/digit3/seed0", "mnist/localize_digit1",
                                  "mnist/localize_digit3", "mnist/figures",
                                  "ucsd/UCSDped1/train/seed0", "ucsd/UCSDped1/localize",
                                  "mvtec/synthetic/train/seed0", "mvtec/synthetic/localize")}


# --- verdicts say what the data says -------------------------------------------------------------


def test_a_verdict_cell_agrees_with_the_intervals_of_the_real_ucsd_result(written):
    data = json.loads((DOCS / "results.json").read_text())
    base = next(s for s in data["settings"] if s["name"] == "recon-abs")
    low, high = base["metrics"]["pixel_auroc"]["ci95"]
    shown = _column(_table(_section(written["md"], "UCSDped1"), "setting"),
                    "vs recon-abs pixel AUROC")
    above = [s["name"] for s in data["settings"] if s["metrics"]["pixel_auroc"]["ci95"][0] > high]
    below = [s["name"] for s in data["settings"] if s["metrics"]["pixel_auroc"]["ci95"][1] < low]
    assert "attention conv2 m1 abs" in above and "random" in below
    assert {shown[name] for name in above} == {"better"}
    assert {shown[name] for name in below} == {"worse"}
    assert shown["recon-abs"] == "–"  # the baseline is not compared with itself


def test_the_verdict_cells_and_the_claims_follow_the_synthetic_data(written):
    grid = _table(_section(written["md"], "synthetic"), "setting")
    assert _column(grid, "vs recon-abs pixel AUROC")["attention conv2 m1 relu"] == "better"
    assert _column(grid, "vs recon-abs pixel AUROC")["attention conv2 m2 abs"] == "worse"
    assert _column(grid, "vs trivial pixel AUROC")["attention conv2 m2 abs"] == (
        "undecided (vs mean-diff)")
    verdicts = {v["claim"].split(":")[0]: v for v in json.loads(written["json"])["verdicts"]}
    assert verdicts["Claim 1"]["verdict"] == "reproduced"  # method 1 ReLU above chance
    assert "trained on 3: method 1 conv2 relu pixel AUROC 0.850" in verdicts["Claim 1"][
        "evidence"]
    assert verdicts["Claim 2"]["verdict"] == "reproduced"
    assert "synthetic: conv2 m1 relu 0.850 vs recon-abs 0.700 (better" in verdicts["Claim 2"][
        "evidence"]
    summary = _section(written["md"], "Summary")
    assert "- **reproduced**: Claim 1" in summary and "- **reproduced**: Claim 2" in summary


def test_claim_2_is_reproduced_only_where_the_chosen_attention_map_is_better():
    def tuned_attention(verdict: str) -> dict[str, Any]:
        results = _synthetic(tuned=True)
        chosen = next(s for s in results["settings"] if s.get("tuned"))
        chosen["metrics"]["pixel_auroc"]["vs_baseline"]["verdict"] = verdict
        return results

    def claim(*verdicts: str) -> str:
        found = [("mvtec", f"category{k}", tuned_attention(v)) for k, v in enumerate(verdicts)]
        return report.claim2(found, generated=True).verdict

    assert claim("better", "better") == "reproduced"
    assert claim("better", "worse") == "partly reproduced"
    assert claim("undecided", "worse") == "not reproduced"
    collapsed = tuned_attention("better")
    collapsed["collapsed_seeds"] = [1]
    assert report.claim2([("mvtec", "x", collapsed)], generated=True).verdict == "inconclusive"


# --- captions ------------------------------------------------------------------------------


def test_the_highest_pixel_auroc_named_is_the_maximum_of_the_rows_shown(written):
    beyond = _table(_section(written["md"], "Beyond the paper"), "dataset")
    for dataset, section in (("mnist digit1", "Trained on 1"), ("ucsd UCSDped1", "UCSDped1"),
                             ("mvtec synthetic", "synthetic")):
        rows = _column(_table(_section(written["md"], section), "map"), "pixel AUROC")
        measured = {name: _mean(text) for name, text in rows.items()
                    if not text.startswith("degenerate")}
        assert _mean(_row(beyond, dataset)["pixel AUROC"]) == max(measured.values()), dataset


def test_the_attention_column_of_table_2_is_called_best_only_if_it_is_the_maximum(written):
    """The MVTec-AD run chose conv2 m1 relu (0.85) on training data; the test images' maximum
    of the attention grid is conv1 m1 relu (0.90)."""
    section = _section(written["md"], "MVTec-AD (claim 2)")
    table2 = _table(section, "category")
    header = list(table2[0])[-1]
    shown = _mean(table2[0][header])
    grid = _column(_table(_section(written["md"], "synthetic"), "setting"), "pixel AUROC")
    attention = [_mean(v) for k, v in grid.items() if k.startswith("attention ")]
    assert shown == 0.85 and max(attention) == 0.90
    assert "best" not in header
    caption = next(line for line in section.splitlines() if line.startswith("*Pixel AUROC"))
    assert "chosen on training data" in caption


def test_beyond_the_paper_says_chosen_on_training_data_only_for_tuned_runs(written):
    caption = next(line for line in _section(written["md"], "Beyond the paper").splitlines()
                   if line.startswith("*"))
    # the MNIST runs here were not tuned: their rows were picked on the test images
    assert "highest pixel AUROC on the test images" in caption
    table, _ = report.beyond_the_paper([("mvtec", "a", _synthetic(tuned=True))])
    assert "options chosen on training data" in table.caption
    assert "test images" not in table.caption


# --- health, degenerate maps -----------------------------------------------------------------


def test_latent_and_encoder_health_are_shown_with_a_warning_for_a_dead_layer(written):
    section = _section(written["md"], "Trained on 1")
    health = _table(section, "seed")
    assert _column(health, "active units") == {"0": "5 of 8", "1": "4 of 8"}
    assert _column(health, report.HIDDEN_ALIVE) == {"0": "90% (encoder.0, Conv2d)",
                                                    "1": "10% (encoder.3, Conv2d)"}
    assert _column(health, "collapsed") == {"0": "no", "1": "no"}
    assert "an encoder layer is under 20% alive (seed 1: 10% (encoder.3, Conv2d))" in section
    ucsd = _table(_section(written["md"], "UCSDped1"), "seed")
    assert set(_column(ucsd, "active units").values()) == {"32 of 32"}
    assert "under 20% alive" not in _section(written["md"], "UCSDped1")


def test_a_degenerate_map_is_marked_and_left_out_of_the_means(written):
    grid = _table(_section(written["md"], "Trained on 1"), "setting")
    assert _row(grid, "grad-kl")["pixel AUROC"] == f"degenerate ({CONSTANT})"
    assert _row(grid, "grad-kl")["vs recon-abs pixel AUROC"] == "degenerate"
    partly = _row(grid, "recon-smooth")["pixel AUROC"]
    # seed 1 left out: the mean is seed 0's value alone, and the cell says so
    assert partly == r"0.720 \[0.700, 0.740\] (degenerate on seed 1, left out)"
    beyond = _section(written["md"], "Beyond the paper")
    assert "grad-kl" not in beyond
    cells = json.loads(written["json"])["experiments"]["mnist"]["digit1"]["cells"]
    assert "mean" not in cells["grad-kl"]["pixel_auroc"]


# --- rendering ---------------------------------------------------------------------------------


def test_markdown_html_and_results_hold_no_path_of_this_machine(written):
    out = written["out"]
    for name in ("md", "html", "json"):
        assert str(out) not in written[name], name
        assert str(out.parent) not in written[name], name
    assert "](ucsd/UCSDped1/localize/roc.png)" in written["md"]  # relative to report.md
    assert written["html"].count("data:image/png;base64,") == 1  # embedded, self-contained
    stages = json.loads(written["json"])["stages"]
    assert stages["ucsd/UCSDped1/localize"]["config"]["out"] == "$OUT/ucsd/UCSDped1/localize"


def test_a_failed_stage_is_reported_where_its_results_would_be(tmp_path):
    plan, runner = _run(tmp_path / "out", fail="mnist/localize_digit3")
    doc, data = report.build(plan, runner, "vaecam reproduce --preset smoke")
    assert data["failed"] == ["mnist/localize_digit3"]
    assert data["stages"]["mnist/localize_digit3"]["status"] == "failed"
    mnist = next(s for s in doc.sections if s.title == "MNIST (claim 1)")
    three = next(s for s in mnist.subsections if s.title == "Trained on 3")
    assert [b.text for b in three.blocks] == [
        "No results: stage mnist/localize_digit3 failed: the test images could not be read."]
    claim1 = next(v for v in data["verdicts"] if v["claim"].startswith("Claim 1"))
    assert "trained on 1" in claim1["evidence"] and "trained on 3" not in claim1["evidence"]
    assert any("1 stage(s) failed or were blocked (mnist/localize_digit3)" in b.text
               for b in doc.intro if hasattr(b, "level"))
