"""End to end through ``vaecam.cli.main``: synthesize data, train and localize UCSD and MVTec
with the smoke preset, and bad input that must end in exit status 2 with a one-line error."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaecam.cli import main

pytestmark = pytest.mark.slow



def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table in ``text`` as rows of stripped cells (separator rows dropped)."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            if not set(line) <= set("|-"):
                current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


def assert_filled(table_md: str, n_tables: int) -> None:
    tables = markdown_tables(table_md)
    assert len(tables) == n_tables
    for table in tables:
        width = len(table[0])
        for row in table:
            assert len(row) == width, row
            assert all(cell and cell != "–" for cell in row), row


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def synth(module_tmp_path: Path) -> Path:
    """Both synthetic datasets, written through ``vaecam data synth``."""
    root = module_tmp_path / "synth"
    assert main(["data", "synth", "ucsd", str(root / "ucsd")]) == 0
    assert main(["data", "synth", "mvtec", str(root / "mvtec"), "--n-train", "24"]) == 0
    return root


@pytest.fixture(scope="module")
def ucsd_run(synth: Path, module_tmp_path: Path) -> Path:
    out = module_tmp_path / "ucsd_run"
    assert main(["train", "ucsd", "--preset", "smoke", "--data", str(synth / "ucsd/UCSDped1"),
                 "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def mvtec_run(synth: Path, module_tmp_path: Path) -> Path:
    out = module_tmp_path / "mvtec_run"
    assert main(["train", "mvtec", "--preset", "smoke", "--data", str(synth / "mvtec"),
                 "--category", "synthetic", "--out", str(out), "--no-progress"]) == 0
    return out


def _check_results(out: Path, stdout: str) -> dict:
    table = (out / "table.md").read_text()
    for t in markdown_tables(table):
        for row in t:
            assert len(row) == len(t[0]) and all(row), row
    assert str(out / "results.json") in stdout and "| recon-abs |" in stdout
    # the trivial references are printed, and every row carries both verdicts
    printed = markdown_tables(stdout)[0]
    assert {"mean-diff", "random"} <= {row[0] for row in printed}
    assert {"vs recon-abs pixel AUROC", "vs trivial pixel AUROC", "vs recon-abs AUPRO",
            "vs trivial AUPRO"} <= set(printed[0])
    results = json.loads((out / "results.json").read_text())
    assert results["trivial_references"] == ["mean-diff", "random"]
    assert results["bootstrap"]["scheme"] == "two-level"
    for key in ("checkpoints", "switches", "data", "training", "model", "settings", "latent"):
        assert results[key], key
    assert results["training"]["0"]["seed"] == 0 and results["seeds"] == [0]
    assert (out / "roc.png").is_file() and (out / "overlays_methods.png").is_file()
    return results


def _metric(results: dict, name: str, metric: str = "pixel_auroc") -> float:
    setting = next(s for s in results["settings"] if s["name"] == name)
    return setting["metrics"][metric]["mean"]


def test_localize_ucsd_smoke_fills_figure4_and_finds_the_cart(ucsd_run, tmp_path, capsys):
    out = tmp_path / "loc"
    code, stdout, _ = run_cli(["localize", "ucsd", "--preset", "smoke", "--checkpoint",
                               ucsd_run, "--out", out, "--no-progress"], capsys)
    assert code == 0
    results = _check_results(out, stdout)
    figure4 = next(t for t in markdown_tables(results["table_md"]) if t[0][0] == "layer")
    assert [r[0] for r in figure4[1:]] == ["recon-abs", "conv1", "conv2", "conv3"]
    assert results["switches"]["frames"] == "all"
    assert results["data"]["skipped_clips"] == ["Test003"]
    # frames of a clip are near-copies: the bootstrap resamples whole clips
    assert results["bootstrap"]["unit"] == "clip"
    assert results["bootstrap"]["n_units"] == len(results["data"]["clips"])
    names = [s["name"] for s in results["settings"]]
    assert names[0] == "recon-abs" and len([n for n in names if n.startswith("attention ")]) == 12
    assert {"combi", "grad-kl", "ssim", "recon-sq", "attention-x-recon"} <= set(names)
    # the carts of the generated clips are found by the baseline and by these settings
    assert _metric(results, "recon-abs") >= 0.95 and _metric(results, "recon-abs", "aupro") >= 0.9
    assert _metric(results, "combi") >= 0.95
    assert _metric(results, "attention conv1 m1 relu") >= 0.85
    health = results["latent"]["0"]
    assert health["collapsed"] == (health["active_units"] == 0)
    assert ("collapsed" in stdout or "collapsed" in capsys.readouterr().err) or \
        not health["collapsed"]


def test_localize_ucsd_switches_are_recorded(ucsd_run, tmp_path, capsys):
    out = tmp_path / "loc"
    code, stdout, _ = run_cli(
        ["localize", "ucsd", "--preset", "smoke", "--checkpoint",
         ucsd_run / "seed0/checkpoints/last.ckpt", "--out", out, "--frames", "anomalous-only",
         "--resize", "downscale-masks", "--mask-rule", "any", "--grad-norm", "rms-image",
         "--layer", "conv2", "encoder.4", "--method", "2", "--activation", "abs",
         "--maps", "attention", "--max-images", "6", "--device", "cpu", "--resamples", "200",
         "--no-progress"], capsys)
    assert code == 0
    results = _check_results(out, stdout)
    switches = results["switches"]
    assert switches["resize"] == "downscale-masks" and switches["grad_norm"] == "rms-image"
    assert switches["mask_rule"] == "any" and switches["device"] == "cpu"
    assert switches["layers"] == {"conv2": "encoder.2", "conv3": "encoder.4"}
    assert results["n_images"] == 6 and results["n_resamples"] == 200
    assert [s["name"] for s in results["settings"]] == [
        "recon-abs", "mean-diff", "random", "attention conv2 m2 abs", "attention conv3 m2 abs"]
    assert "image_auroc_max" not in results["settings"][0]["metrics"]  # anomalous frames only


def test_localize_mvtec_smoke_fills_table2(mvtec_run, synth, tmp_path, capsys):
    out = tmp_path / "loc"
    code, stdout, _ = run_cli(["localize", "mvtec", "--preset", "smoke", "--checkpoint",
                               mvtec_run, "--out", out, "--no-progress"], capsys)
    assert code == 0
    results = _check_results(out, stdout)
    assert results["model"]["config"]["pretrained_loaded"] is False
    assert results["data"]["category"] == "synthetic"
    assert results["training"]["0"]["data"]["n_train_items"] == 64  # augmented on the fly
    assert {"aupro", "image_auroc_max"} <= set(results["settings"][0]["metrics"])
    table2 = next(t for t in markdown_tables(results["table_md"]) if t[0][0] == "category")
    assert [r[1] for r in table2[1:]] == ["pixel AUROC", "best IoU"]
    assert _metric(results, "recon-abs") >= 0.9 and _metric(results, "combi") >= 0.9
    assert results["bootstrap"]["unit"] == "image"
    assert results["bootstrap"]["n_units"] == results["n_images"]
    random_cell = next(s for s in results["settings"] if s["name"] == "random")["metrics"]
    assert random_cell["pixel_auroc"]["vs_baseline"]["verdict"] == "worse"
    assert abs(_metric(results, "random") - 0.5) < 0.05


def _one_line_error(code: int, err: str, needle: str) -> None:
    """Exit 2 and one error line (the data's own warnings, such as skipped clips, may precede
    it); no traceback."""
    assert code == 2
    lines = [line for line in err.strip().splitlines()
             if not line.startswith("vaecam: warning:")]
    assert len(lines) == 1 and lines[0].startswith("vaecam: error:"), err
    assert needle in lines[0], lines[0]


def test_missing_data_folder(tmp_path, capsys):
    code, _, err = run_cli(["train", "ucsd", "--preset", "smoke", "--data", tmp_path / "nope",
                            "--out", tmp_path / "run"], capsys)
    _one_line_error(code, err, "not found")
    code, _, err = run_cli(["train", "mvtec", "--preset", "smoke", "--data", tmp_path / "nope",
                            "--category", "screw", "--out", tmp_path / "run"], capsys)
    _one_line_error(code, err, "not found")


def _copy_category(synth: Path, tmp_path: Path) -> Path:
    root = tmp_path / "mvtec"
    shutil.copytree(synth / "mvtec", root)
    return root


def test_mvtec_missing_mask(mvtec_run, synth, tmp_path, capsys):
    root = _copy_category(synth, tmp_path)
    (root / "synthetic/ground_truth/patch/001_mask.png").unlink()
    code, _, err = run_cli(["localize", "mvtec", "--preset", "smoke", "--checkpoint", mvtec_run,
                            "--data", root, "--out", tmp_path / "loc"], capsys)
    _one_line_error(code, err, "has no mask")


def test_mvtec_mask_of_another_size(mvtec_run, synth, tmp_path, capsys):
    root = _copy_category(synth, tmp_path)
    Image.new("L", (32, 32)).save(root / "synthetic/ground_truth/scratch/000_mask.png")
    code, _, err = run_cli(["localize", "mvtec", "--preset", "smoke", "--checkpoint", mvtec_run,
                            "--data", root, "--out", tmp_path / "loc"], capsys)
    _one_line_error(code, err, "masks must have their image's size")


def test_ucsd_clip_without_masks_named_explicitly(ucsd_run, tmp_path, capsys):
    code, _, err = run_cli(["localize", "ucsd", "--preset", "smoke", "--checkpoint", ucsd_run,
                            "--clips", "Test003", "--out", tmp_path / "loc"], capsys)
    _one_line_error(code, err, "Test003 has no pixel masks")


def test_empty_category(synth, tmp_path, capsys):
    root = _copy_category(synth, tmp_path)
    (root / "empty/train/good").mkdir(parents=True)
    code, _, err = run_cli(["train", "mvtec", "--preset", "smoke", "--data", root,
                            "--category", "empty", "--out", tmp_path / "run"], capsys)
    _one_line_error(code, err, "no training images")


def test_corrupt_png_during_training(synth, tmp_path, capsys):
    root = _copy_category(synth, tmp_path)
    for png in (root / "synthetic/train/good").glob("*.png"):
        png.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code, _, err = run_cli(["train", "mvtec", "--preset", "smoke", "--data", root,
                            "--category", "synthetic", "--out", tmp_path / "run",
                            "--no-progress"], capsys)
    _one_line_error(code, err, "cannot read image")


def test_checkpoint_of_another_model(ucsd_run, synth, tmp_path, capsys):
    code, _, err = run_cli(["localize", "mvtec", "--preset", "smoke", "--checkpoint", ucsd_run,
                            "--data", synth / "mvtec", "--category", "synthetic",
                            "--out", tmp_path / "loc"], capsys)
    _one_line_error(code, err, "holds a 'ucsd-vae' model")


def test_synth_refuses_options_of_the_other_kind_and_non_empty_out(synth, tmp_path, capsys):
    code, _, err = run_cli(["data", "synth", "ucsd", tmp_path / "u", "--size", "64"], capsys)
    _one_line_error(code, err, "--size does not apply to 'ucsd' datasets")
    code, _, err = run_cli(["data", "synth", "mvtec", synth / "mvtec"], capsys)
    _one_line_error(code, err, "already holds")
    frame = np.asarray(Image.open(next((synth / "ucsd/UCSDped1/Test/Test001").iterdir())))
    assert frame.shape == (80, 120)


def test_a_model_trained_into_collapse_is_flagged(synth, tmp_path, capsys):
    """A KL weight of 10,000 (recon scale 1e-4) collapses the posterior on purpose."""
    run, out = tmp_path / "run", tmp_path / "loc"
    code, _, err = run_cli(["train", "ucsd", "--preset", "smoke", "--data",
                            synth / "ucsd/UCSDped1", "--out", run, "--max-epochs", "3",
                            "--recon-scale", "0.0001", "--no-progress"], capsys)
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("vaecam: warning:")]
    assert len(warnings) == 1, err
    assert re.match(r"vaecam: warning: seed 0: encoder layer encoder\.\d+ \((Linear|Conv2d)\) "
                    r"\d+% alive, 0 of \d+ latent units active", warnings[0]), warnings[0]
    assert "try " in warnings[0]
    health = json.loads((run / "seed0/health.json").read_text())
    assert health["collapsed"] and health["epoch"] == 2 and health["probe_images"] >= 2
    layers = health["encoder_layers"]  # three convolutions and the hidden Linear
    assert [h["kind"] for h in layers.values()] == ["Conv2d", "Conv2d", "Conv2d", "Linear"]
    assert health["hidden_alive"] == min(h["alive_fraction"]
                                         for h in health["encoder_layers"].values())
    with open(next(run.glob("seed0/logs/csv/version_*/metrics.csv"))) as handle:
        logged = [row for row in csv.DictReader(handle) if row["encoder/hidden_alive"]]
    assert len(logged) == 3 and float(logged[-1]["encoder/hidden_alive"]) == pytest.approx(
        health["hidden_alive"])
    assert {"encoder/alive/encoder.7", "encoder/spread/encoder.0", "latent/kl"} <= set(logged[0])
    code, stdout, err = run_cli(["localize", "ucsd", "--preset", "smoke", "--checkpoint", run,
                                 "--out", out, "--maps", "attention,combi,ssim", "--layer", "conv3",
                                 "--no-progress"], capsys)
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["latent"]["0"]["active_units"] == 0 and results["collapsed_seeds"] == [0]
    assert results["latent"]["0"]["hidden_layer"].startswith("encoder.")
    warnings = [line for line in err.splitlines() if "collapsed" in line]
    assert len(warnings) == 1 and warnings[0].startswith("vaecam: warning: the latent of seed")
    table = (out / "table.md").read_text()
    assert "hidden alive (least-alive encoder layer)" in table
    attention_rows = [line for line in table.splitlines() if line.startswith("| attention")]
    assert attention_rows and all("⚠ collapsed latent" in line for line in attention_rows)
    combi_rows = [line for line in table.splitlines() if line.startswith("| combi")]
    assert combi_rows and all("⚠ collapsed latent" in line for line in combi_rows)  # KL factor
    # maps that only compare the image with its reconstruction are not marked
    assert "| recon-abs |" in table and "| ssim |" in table


def test_bad_localisation_requests_are_one_line_errors(ucsd_run, synth, tmp_path, capsys):
    base = ["localize", "ucsd", "--preset", "smoke", "--checkpoint", ucsd_run, "--no-progress"]
    code, _, err = run_cli([*base, "--out", tmp_path / "a", "--resamples", "50"], capsys)
    _one_line_error(code, err, "--resamples: must be an integer >= 100")
    code, _, err = run_cli([*base, "--out", tmp_path / "b", "--maps", "recon-abs,nope"], capsys)
    _one_line_error(code, err, "unknown anomaly map 'nope'")
    code, _, err = run_cli([*base, "--out", tmp_path / "c", "--projection-steps", "-1"], capsys)
    _one_line_error(code, err, "--projection-steps")
    code, _, err = run_cli([*base, "--out", tmp_path / "d", "--smooth-sigma", "-2"], capsys)
    _one_line_error(code, err, "--smooth-sigma")
    # a subset with no anomalous pixel (the first test clip's first frames are all normal)
    code, _, err = run_cli([*base, "--out", tmp_path / "e", "--clips", "Test001",
                            "--max-images", "1"], capsys)
    _one_line_error(code, err, "no anomalous pixel")
    code, _, err = run_cli([*base, "--out", tmp_path / "f", "--seeds", "3"], capsys)
    _one_line_error(code, err, "no run for seed 3")


def test_options_that_do_nothing_are_named(synth, tmp_path, capsys, monkeypatch):
    code, _, err = run_cli(["train", "dsprites", "--preset", "smoke", "--model", "factorvae",
                            "--lambda", "2", "--max-steps", "1", "--out", tmp_path / "d",
                            "--no-progress"], capsys)
    assert code == 0
    assert "vaecam: warning: --lambda only applies to ad-factorvae" in err
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_hub"))
    code, _, err = run_cli(["train", "mvtec", "--preset", "smoke", "--data", synth / "mvtec",
                            "--category", "synthetic", "--pretrained", "--max-steps", "1",
                            "--out", tmp_path / "m", "--no-progress"], capsys)
    assert code == 0
    assert "vaecam: warning: no ResNet18 ImageNet weights" in err
