"""``vaecam train|score|sweep dsprites`` end to end, in-process, on procedural dSprites."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vaecam.cli import main
from vaecam.data.dsprites import load_dsprites
from vaecam.experiments import dsprites
from vaecam.metrics.disentanglement import (
    FACTORVAE_METRIC_PRESETS,
    factor_vae_metric,
    torch_representation,
)
from vaecam.metrics.paired import paired_seed_test
from vaecam.training.checkpoints import load_model

pytestmark = pytest.mark.slow


def run_ok(args: list[str]) -> None:
    assert main(args) == 0, args


def run_error(args: list[str], capsys: pytest.CaptureFixture[str], expected: str) -> None:
    """The command exits with status 2 and one ``vaecam: error:`` line naming the problem."""
    capsys.readouterr()
    assert main(args) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "vaecam: error" in line]
    assert len(lines) == 1 and expected in lines[0], lines


@pytest.fixture(scope="module")
def trained(module_tmp_path: Path) -> dict[str, Path]:
    """Smoke-preset runs of both models: model name -> run folder."""
    root = module_tmp_path
    runs = {}
    for model in ("factorvae", "ad-factorvae"):
        out = root / model
        run_ok(["train", "dsprites", "--preset", "smoke", "--model", model, "--out", str(out),
                "--no-progress", "--ad-pairs", "all", "--max-steps", "3"])
        runs[model] = out / "seed0"
    return runs


def logged_columns(run: Path) -> set[str]:
    (path,) = run.glob("logs/csv/**/metrics.csv")
    with open(path) as handle:
        return {k for row in csv.DictReader(handle) for k, v in row.items() if v}


@pytest.mark.parametrize("model", ["factorvae", "ad-factorvae"])
def test_train_and_score(trained: dict[str, Path], model: str, tmp_path: Path) -> None:
    run = trained[model]
    checkpoint = run / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file() and (run / "train_config.json").is_file()
    columns = logged_columns(run)
    expected = {"train/recon_step", "train/kl_step", "train/tc_step", "train/d_loss_step",
                "metric/factorvae"}
    assert expected <= columns
    assert ("train/ad_step" in columns) == (model == "ad-factorvae")
    (path,) = run.glob("logs/csv/**/metrics.csv")
    with open(path) as handle:
        scored = [row for row in csv.DictReader(handle) if row["metric/factorvae"]]
    assert len(scored) == 1  # scored at step 2 (smoke: every 2 steps), not repeated at step 3

    run_ok(["score", "dsprites", "--preset", "smoke", "--checkpoint", str(checkpoint),
            "--out", str(tmp_path)])
    result = json.loads((tmp_path / "score.json").read_text())
    for key in ("factorvae", "mig", "recon_error", "num_active_dims", "steps", "gamma"):
        assert result[key] is not None, key
    # the CLI scores the checkpoint's model with the preset's sizes and seed: the same number
    # as the metric computed here directly on the loaded model
    loaded, _ = load_model(checkpoint, expected="factorvae")
    direct = factor_vae_metric(load_dsprites("procedural"), torch_representation(loaded, "cpu"),
                               seed=0, **{**FACTORVAE_METRIC_PRESETS["reproduction"],
                                          "batch_size": 8, "num_train": 10, "num_eval": 6,
                                          "num_variance_estimate": 64})
    assert result["factorvae"] == direct["eval_accuracy"]
    assert result["num_active_dims"] == direct["num_active_dims"]
    assert result["recon_error"] > 0
    assert result["model"] == model and result["steps"] == 3
    assert (result["ad"] is not None) == (model == "ad-factorvae")
    assert result["metric_sizes"]["num_train"] == 10  # smoke sizes over the named preset


def test_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three seeds per model (a faster smoke model, so that scores differ): the cost is printed
    first, and the summary holds the across-seed test of the runs' own scores."""
    config = tmp_path / "fast.yaml"
    config.write_text("presets: {smoke: {train: {lr: 0.01, max_steps: 6}}}\n")
    out = tmp_path / "sweep"
    args = ["sweep", "dsprites", "--preset", "smoke", "--config", str(config), "--gammas", "20",
            "--models", "factorvae", "ad-factorvae", "--seeds", "0", "1", "2", "--out", str(out),
            "--no-progress"]
    run_ok(args)
    printed = capsys.readouterr().out
    assert printed.startswith("dSprites smoke: 6 runs (2 models x 1 gamma x 3 seeds) x ~3.0 s "
                              "(train + score) = ~18.0 s")
    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    assert [(r["model"], r["gamma"], r["train_seed"]) for r in runs] == [
        (m, 20.0, s) for m in ("factorvae", "ad-factorvae") for s in (0, 1, 2)]
    assert all(r["recon_error"] > 0 and r["factorvae"] is not None for r in runs)
    scores = {(r["model"], r["train_seed"]): r["factorvae"] for r in runs}
    expected = paired_seed_test([scores["ad-factorvae", s] for s in range(3)],
                                [scores["factorvae", s] for s in range(3)],
                                resamples=dsprites.PAIRED_RESAMPLES, seed=dsprites.PAIRED_SEED)
    (paired,) = results["paired"]
    assert paired["test"] == expected.to_dict() and paired["seeds"] == [0, 1, 2]
    assert paired["verdict"] == expected.verdict
    assert paired["factorvae"]["mean"] == pytest.approx(np.mean([scores["factorvae", s]
                                                                 for s in range(3)]))
    markdown = (out / "results.md").read_text()
    assert "95% interval (seed bootstrap)" in markdown and "Wilcoxon p" in markdown
    assert "Published numbers" in markdown and (out / "figure5b.png").stat().st_size > 0
    assert "Wilcoxon" in printed and "0.74-0.84" in printed  # the test and the references
    run_ok(args)  # scored runs are reused, not retrained
    assert "6 already done" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["runs"] == runs


def test_bad_inputs(tmp_path: Path, trained: dict[str, Path],
                    capsys: pytest.CaptureFixture[str]) -> None:
    base = ["train", "dsprites", "--preset", "smoke", "--no-progress"]
    run_error([*base, "--gamma", "-1", "--out", str(tmp_path / "a")], capsys, "gamma")
    run_error([*base, "--model", "ad-factorvae", "--lambda", "-2", "--out", str(tmp_path / "b")],
              capsys, "lambda")
    run_error([*base, "--model", "ad-factorvae", "--ad-pairs", "many",
               "--out", str(tmp_path / "c")], capsys, "ad-pairs")

    bad_npz = tmp_path / "dsprites.npz"
    np.savez(bad_npz, imgs=np.zeros((10, 32, 32), dtype=np.uint8))
    run_error([*base, "--dsprites", str(bad_npz), "--out", str(tmp_path / "d")], capsys,
              "wrong shape")

    other = tmp_path / "mnist.ckpt"
    torch.save({"vaecam": {"format": 1, "model": "mnist-vae", "config": {}}, "state_dict": {}},
               other)
    run_error(["score", "dsprites", "--preset", "smoke", "--checkpoint", str(other)], capsys,
              "mnist-vae")
    run_error(["score", "dsprites", "--preset", "smoke", "--checkpoint",
               str(tmp_path / "missing.ckpt")], capsys, "not found")
