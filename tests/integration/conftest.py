"""Fixtures shared by the end-to-end tests: a small trained MNIST model."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaecam.cli import main


@pytest.fixture(scope="session")
def mnist_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-class model trained on digit 1 with the smoke preset, through the CLI."""
    out = tmp_path_factory.mktemp("mnist_run")
    code = main(["train", "mnist", "--digit", "1", "--preset", "smoke", "--max-epochs", "2",
                 "--accelerator", "cpu", "--out", str(out), "--no-progress"])
    assert code == 0
    return out / "seed0" / "checkpoints" / "best.ckpt"
