"""``vaecam explain --chunk``: the same maps whatever the chunk, one-line error for a bad one."""

from __future__ import annotations

import numpy as np

from vaecam.cli import main


def test_chunked_explain_writes_the_same_maps(mnist_checkpoint, tmp_path, capsys):
    base = ["explain", "--checkpoint", str(mnist_checkpoint), "--digits", "7", "--n", "2",
            "--method", "1"]
    assert main([*base, "--out", str(tmp_path / "whole")]) == 0
    assert main([*base, "--chunk", "3", "--out", str(tmp_path / "chunked")]) == 0
    name = "digit7_method1_relu_encoder-2.npz"
    whole = np.load(tmp_path / "whole" / name)["maps"]
    chunked = np.load(tmp_path / "chunked" / name)["maps"]
    assert whole.max() > 0
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-7)
    capsys.readouterr()
    assert main([*base, "--chunk", "0", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vaecam: error: ") and "--chunk" in err and "\n" not in err
