"""End to end through ``vaecam.cli.main``: synthesize data, train and localize UCSD and MVTec
with the smoke preset, and bad input that must end in exit status 2 with a one-line error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaecam.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run ~100x slower with 2 threads when the other core is busy (OpenMP)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both synthetic datasets, written through ``vaecam data synth``."""
    root = tmp_path_factory.mktemp("synth")
    assert main(["data", "synth", "ucsd", str(root / "ucsd")]) == 0
    assert main(["data", "synth", "mvtec", str(root / "mvtec"), "--n-train", "24"]) == 0
    return root


@pytest.fixture(scope="module")
def ucsd_run(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ucsd_run")
    assert main(["train", "ucsd", "--preset", "smoke", "--data", str(synth / "ucsd/UCSDped1"),
                 "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def mvtec_run(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mvtec_run")
    assert main(["train", "mvtec", "--preset", "smoke", "--data", str(synth / "mvtec"),
                 "--category", "synthetic", "--out", str(out), "--no-progress"]) == 0
    return out


def _check_results(out: Path, stdout: str, n_tables: int) -> dict:
    table = (out / "table.md").read_text()
    assert_filled(table, n_tables)
    assert str(out / "results.json") in stdout and "| baseline |" in stdout
    results = json.loads((out / "results.json").read_text())
    for key in ("checkpoint", "switches", "data", "training", "model", "results"):
        assert results[key], key
    assert results["training"]["seed"] == 0
    assert (out / "roc.png").is_file() and (out / "overlays_baseline.png").is_file()
    return results


def _best(results: dict) -> tuple[float, float]:
    attention = [r["pixel_auroc"] for r in results["results"] if r["layer"] != "baseline"]
    baseline = next(r for r in results["results"] if r["layer"] == "baseline")
    return max(attention), baseline["pixel_auroc"]


def test_localize_ucsd_smoke_fills_figure4_and_finds_the_cart(ucsd_run, tmp_path, capsys):
    out = tmp_path / "loc"
    code, stdout, _ = run_cli(["localize", "ucsd", "--preset", "smoke", "--checkpoint",
                               ucsd_run, "--out", out], capsys)
    assert code == 0
    results = _check_results(out, stdout, n_tables=2)
    rows = [r[0] for r in markdown_tables(results["table_md"])[0][1:]]
    assert rows == ["baseline", "conv1", "conv2", "conv3"]
    assert results["switches"]["frames"] == "all"
    assert results["data"]["skipped_clips"] == ["Test003"]
    assert len(results["results"]) == 1 + 3 * 2 * 2
    assert {f"overlays_conv{i}.png" for i in (1, 2, 3)} <= {p.name for p in out.iterdir()}
    best_attention, baseline = _best(results)
    assert best_attention >= 0.8 and baseline >= 0.8


def test_localize_ucsd_switches_are_recorded(ucsd_run, tmp_path, capsys):
    out = tmp_path / "loc"
    code, stdout, _ = run_cli(
        ["localize", "ucsd", "--preset", "smoke", "--checkpoint",
         ucsd_run / "checkpoints/last.ckpt", "--out", out, "--frames", "anomalous-only",
         "--resize", "downscale-masks", "--mask-rule", "any", "--grad-norm", "rms-image",
         "--layer", "conv2", "encoder.4", "--method", "2", "--activation", "abs",
         "--max-images", "6", "--device", "cpu"], capsys)
    assert code == 0
    results = _check_results(out, stdout, n_tables=2)
    switches = results["switches"]
    assert switches["resize"] == "downscale-masks" and switches["grad_norm"] == "rms-image"
    assert switches["mask_rule"] == "any" and switches["device"] == "cpu"
    assert switches["layers"] == {"conv2": "encoder.2", "conv3": "encoder.4"}
    assert results["n_images"] == 6 and not results["image_level_metrics"]
    assert [r["setting"] for r in results["results"]] == ["baseline", "conv2 m2 abs",
                                                          "conv3 m2 abs"]


def test_localize_mvtec_smoke_fills_table2(mvtec_run, synth, tmp_path, capsys):
    out = tmp_path / "loc"
    code, stdout, _ = run_cli(["localize", "mvtec", "--preset", "smoke", "--checkpoint",
                               mvtec_run, "--out", out], capsys)
    assert code == 0
    results = _check_results(out, stdout, n_tables=2)
    assert results["model"]["config"]["pretrained_loaded"] is False
    assert results["data"]["category"] == "synthetic"
    assert results["training"]["data"]["n_train_items"] == 64  # augmented on the fly
    assert {"aupro", "image_auroc_max"} <= set(results["results"][0])
    best_attention, baseline = _best(results)
    assert best_attention >= 0.8 and baseline >= 0.8


def _one_line_error(code: int, err: str, needle: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
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
    _one_line_error(code, err, "--size only apply to 'mvtec'")
    code, _, err = run_cli(["data", "synth", "mvtec", synth / "mvtec"], capsys)
    _one_line_error(code, err, "not empty")
    frame = np.asarray(Image.open(next((synth / "ucsd/UCSDped1/Test/Test001").iterdir())))
    assert frame.shape == (80, 120)
