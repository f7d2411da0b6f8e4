"""End to end through the CLI on the bundled MNIST digits (no download)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vaecam.cli import build_parser, main


def _subcommands():
    found = {(): build_parser()}

    def walk(parser, prefix):
        for action in parser._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for name, sub in action.choices.items():
                    found[(*prefix, name)] = sub
                    walk(sub, (*prefix, name))

    walk(found[()], ())
    return found


COMMANDS = _subcommands()


@pytest.mark.parametrize("command", list(COMMANDS), ids=lambda c: " ".join(c) or "vaecam")
def test_every_command_and_option_has_help(command, capsys):
    assert main([*command, "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: vaecam")
    for action in COMMANDS[command]._actions:
        if action.__class__.__name__ != "_SubParsersAction":
            assert action.help, f"option {action.option_strings or action.dest} has no help"


def test_explain_writes_grids_and_raw_maps(mnist_checkpoint, tmp_path, capsys):
    out = tmp_path / "explain"
    code = main(["explain", "--checkpoint", str(mnist_checkpoint), "--digits", "7", "9",
                 "--method", "1", "--activation", "relu", "--n", "3", "--out", str(out)])
    assert code == 0
    maps = np.load(out / "digit7_method1_relu_encoder-2.npz")
    assert maps["maps"].shape == (3, 28, 28) and maps["images"].shape == (3, 1, 28, 28)
    assert (out / "digit9_method1_relu_encoder-2.png").stat().st_size > 5000
    explained = json.loads((out / "explain.json").read_text())
    assert explained["trained_digit"] == 1
    assert set(explained["latent"]) >= {"kl", "active_units", "mu_std", "collapsed"}
    assert "latent health on held-out digits" in capsys.readouterr().out
    # method 2, abs, another layer, into the same folder only with --overwrite
    args = ["explain", "--checkpoint", str(mnist_checkpoint), "--digits", "4", "--method", "2",
            "--activation", "abs", "--layer", "encoder.0", "--out", str(out)]
    assert main(args) == 2
    assert "already holds the results of 'vaecam explain'; pass --overwrite" in \
        capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert (out / "digit4_method2_abs_encoder-0.npz").is_file()
    capsys.readouterr()
    assert main(["explain", "--checkpoint", str(mnist_checkpoint), "--digits", "4", "--n", "1",
                 "--method", "1", "--grad-norm", "rms-batch", "--out", str(tmp_path / "g")]) == 0
    assert "vaecam: warning: --grad-norm only applies to method 2" in capsys.readouterr().err


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("vaecam: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_give_one_line_errors(mnist_checkpoint, tmp_path, capsys):
    base = ["explain", "--checkpoint", str(mnist_checkpoint), "--out", str(tmp_path / "x")]
    assert main([*base, "--layer", "encoder.9"]) == 2
    assert "unknown layer 'encoder.9'" in _one_line_error(capsys)
    assert main([*base, "--layer", "fc_mu"]) == 2
    assert "choose a convolutional layer" in _one_line_error(capsys)

    other = tmp_path / "other.ckpt"
    torch.save({"vaecam": {"model": "resnet18-vae", "config": {}}, "state_dict": {}}, other)
    assert main(["explain", "--checkpoint", str(other), "--out", str(tmp_path / "y")]) == 2
    assert "holds a 'resnet18-vae' model" in _one_line_error(capsys)

    empty = tmp_path / "no_mnist"
    empty.mkdir()
    assert main(["train", "mnist", "--digit", "1", "--preset", "smoke", "--source",
                 "torchvision", "--mnist-root", str(empty), "--out", str(tmp_path / "t")]) == 2
    assert "MNIST not found under" in _one_line_error(capsys)

    assert main(["train", "mnist", "--digit", "12", "--preset", "smoke",
                 "--out", str(tmp_path / "t2")]) == 2
    assert "--digit: must be an integer >= 0 and <= 9, not '12'" in _one_line_error(capsys)


def test_localize_mnist_scores_every_map_on_pasted_strokes(mnist_checkpoint, tmp_path, capsys):
    out = tmp_path / "loc"
    assert main(["localize", "mnist", "--preset", "smoke", "--checkpoint",
                 str(mnist_checkpoint), "--out", str(out), "--n-anomalies", "60",
                 "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["digit"] == 1 and results["n_images"] == 60 + 50  # + the clean held-out 1s
    by_name = {s["name"]: s["metrics"] for s in results["settings"]}
    assert len([n for n in by_name if n.startswith("attention ")]) == 8  # 2 layers x 2 x 2
    # the pasted ink is found well above chance (0.5) by the baseline and by method 1
    assert by_name["recon-abs"]["pixel_auroc"]["mean"] > 0.8
    assert by_name["attention conv2 m1 relu"]["pixel_auroc"]["mean"] > 0.7
    assert "| recon-abs |" in capsys.readouterr().out


def test_demo_smoke_writes_figures_table_and_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "smoke", "--out", str(out), "--no-progress"]) == 0
    for name in ("figure1_methods_activations.png", "figure2_one_class.png", "report.md"):
        assert (out / name).is_file()
    results = json.loads((out / "results.json").read_text())
    assert set(results["localization"]) == {"1", "3"} and results["seeds"] == [0]
    settings = results["localization"]["1"]["settings"]
    assert settings[0]["name"] == "recon-abs" and len(settings) == 11 + 8  # + attention grid
    assert [s["name"] for s in settings[1:3]] == ["mean-diff", "random"]
    report = (out / "report.md").read_text()
    assert "figure1_methods_activations.png" in report and "| attention conv" in report
    assert "active units" in report
    assert main(["demo", "--preset", "smoke", "--out", str(out)]) == 2
    assert "already holds the results of 'vaecam demo'" in capsys.readouterr().err


def test_seeds_train_distinct_runs_and_localize_aggregates_them(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "loc"
    assert main(["train", "mnist", "--digit", "1", "--preset", "smoke", "--seeds", "0", "1",
                 "--max-steps", "2", "--accelerator", "cpu", "--out", str(runs),
                 "--no-progress"]) == 0
    weights = {}
    for seed in (0, 1):
        config = json.loads((runs / f"seed{seed}" / "train_config.json").read_text())
        assert config["identity"]["module"]["seed"] == seed
        assert json.loads((runs / f"seed{seed}" / "health.json").read_text())["step"] == 2
        checkpoint = torch.load(runs / f"seed{seed}" / "checkpoints" / "last.ckpt",
                                map_location="cpu", weights_only=True)
        weights[seed] = checkpoint["state_dict"]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert main(["localize", "mnist", "--digit", "1", "--preset", "smoke", "--checkpoint",
                 str(runs), "--maps", "recon-abs", "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [0, 1]
    cell = results["settings"][0]["metrics"]["pixel_auroc"]
    assert len(cell["per_seed"]) == 2 and cell["per_seed"][0] != cell["per_seed"][1]
    assert cell["mean"] == pytest.approx(sum(cell["per_seed"]) / 2)


@pytest.mark.slow
def test_train_then_localize_each_harder_protocol(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "mnist", "--digit", "3", "--preset", "smoke", "--max-steps", "3",
                 "--accelerator", "cpu", "--out", str(runs), "--no-progress"]) == 0
    capsys.readouterr()
    out = tmp_path / "erased"
    assert main(["localize", "mnist", "--preset", "smoke", "--checkpoint", str(runs),
                 "--anomaly", "erased", "--n-anomalies", "20", "--maps", "recon-abs,attention",
                 "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["anomaly"] == "erased" and results["digit"] == 3
    assert results["region"] == "digit-box" and results["switches"]["region"] == "digit-box"
    assert "Evaluation region 'digit-box'" in (out / "table.md").read_text()
    assert results["n_images"] == 20 + 50 and "protocol 'erased'" in results["note"]
    assert "MNIST localisation (erased), trained on 3" in (out / "table.md").read_text()
    by_name = {s["name"]: s["metrics"] for s in results["settings"]}
    assert 0.0 <= by_name["recon-abs"]["pixel_auroc"]["mean"] <= 1.0
    assert "| recon-abs |" in capsys.readouterr().out
    out = tmp_path / "in-digit"
    assert main(["localize", "mnist", "--preset", "smoke", "--checkpoint", str(runs),
                 "--anomaly", "in-digit", "--region", "image", "--maps", "recon-abs",
                 "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["anomaly"] == "in-digit" and results["region"] == "image"
    assert main(["localize", "mnist", "--preset", "smoke", "--checkpoint", str(runs),
                 "--anomaly", "scribble", "--out", str(tmp_path / "bad")]) == 2
    assert "--anomaly: must be one of pasted, erased, in-digit, not 'scribble'" in \
        _one_line_error(capsys)
