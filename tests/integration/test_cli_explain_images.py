"""``vaecam explain --images DIR``: an overlay and the raw map per image of a user's folder."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from vaecam.attention import AttentionExplainer
from vaecam.cli import main
from vaecam.training.checkpoints import load_model


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("vaecam: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_explain_a_folder_of_own_images(mnist_checkpoint, tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = tmp_path / "mine"
    images.mkdir()
    Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(images / "gray.png")
    Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(images / "big.jpg")
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert main(["explain", "--checkpoint", str(mnist_checkpoint), "--images", str(images),
                 "--method", "1", "--batch-size", "1", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "2 images explained" in captured.out and "explain" in captured.err  # progress bar
    for stem in ("gray", "big"):
        assert np.load(out / f"{stem}.npy").shape == (28, 28)
        assert (out / f"{stem}.png").stat().st_size > 2000
    listed = json.loads((out / "explain.json").read_text())
    assert listed["layer"] == "encoder.2" and len(listed["files"]) == 4
    # the raw map is the engine's map of the image as the model reads it
    model, _ = load_model(mnist_checkpoint)
    gray = torch.from_numpy(np.asarray(Image.open(images / "gray.png"), np.float32) / 255)
    expected = AttentionExplainer(model, "encoder.2").method1(gray[None, None])[0]
    np.testing.assert_allclose(np.load(out / "gray.npy"), expected.numpy(), rtol=1e-5,
                               atol=1e-7)


def test_bad_image_folders_are_one_line_errors(mnist_checkpoint, tmp_path, capsys):
    base = ["explain", "--checkpoint", str(mnist_checkpoint), "--out", str(tmp_path / "o")]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*base, "--images", str(empty)]) == 2
    assert "no image files" in _one_line_error(capsys)
    assert main([*base, "--images", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in _one_line_error(capsys)
    twice = tmp_path / "twice"
    twice.mkdir()
    for name in ("a.png", "a.bmp"):
        Image.new("L", (28, 28)).save(twice / name)
    assert main([*base, "--images", str(twice)]) == 2
    assert "share a name (a)" in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()
