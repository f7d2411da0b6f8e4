"""score.json and the dSprites summary name paths relative to their folder."""

from __future__ import annotations

import json

from vaecam.experiments import dsprites


def _row(model: str, seed: int, run) -> dict:
    return {"checkpoint": str(run / "checkpoints" / "last.ckpt"), "model": model, "gamma": 40.0,
            "train_seed": seed, "steps": 10, "factorvae": 0.6 + 0.01 * seed, "mig": 0.05,
            "recon_error": 70.0, "metric_sizes": {"num_eval": 20}, "dsprites": "procedural"}


def test_score_json_is_read_back_with_absolute_paths(tmp_path):
    run = tmp_path / "factorvae_gamma40" / "seed0"
    run.mkdir(parents=True)
    (run / "score.json").write_text(json.dumps(
        {"checkpoint": "$OUT/checkpoints/last.ckpt", "factorvae": 0.6}))
    assert dsprites.read_score(run) == {"checkpoint": str(run / "checkpoints" / "last.ckpt"),
                                        "factorvae": 0.6}


def test_the_summary_files_hold_no_absolute_path(tmp_path):
    out = tmp_path / "dsprites"
    rows = [_row(model, seed, out / f"{model}_gamma40" / f"seed{seed}")
            for model in ("factorvae", "ad-factorvae") for seed in range(2)]
    dsprites.write_summary(out / "summary", rows, "table.md", "dSprites summary")
    for name in ("results.json", "table.md"):
        assert str(tmp_path) not in (out / "summary" / name).read_text()
    runs = json.loads((out / "summary" / "results.json").read_text())["runs"]
    assert runs[0]["checkpoint"] == "$OUT/../factorvae_gamma40/seed0/checkpoints/last.ckpt"
