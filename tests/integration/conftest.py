"""Fixtures shared by the end-to-end tests: a small trained MNIST model."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

from vaecam.cli import main


@pytest.fixture(scope="session")
def mnist_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-class model trained on digit 1 with the smoke preset, through the CLI."""
    out = tmp_path_factory.mktemp("mnist_run")
    code = main(["train", "mnist", "--digit", "1", "--preset", "smoke", "--max-epochs", "2",
                 "--accelerator", "cpu", "--out", str(out), "--no-progress"])
    assert code == 0
    return out / "seed0" / "checkpoints" / "best.ckpt"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run far slower with 2 threads when the other core is busy (OpenMP), so every
    end-to-end test runs with one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CHROMIUM = Path("/usr/bin/chromium")
# The machine has no network: without these flags Chromium stalls on refused connections.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def require_browser() -> None:
    """Skip (or fail under VAECAM_REQUIRE_BROWSER=1) when the browser or its driver is absent."""
    reason = None
    if not CHROMIUM.exists():
        reason = (f"{CHROMIUM} is missing; install it with `make browser` "
                  "(apt-get install -y --no-install-recommends chromium)")
    elif importlib.util.find_spec("playwright") is None:
        reason = "the playwright package is missing; install it with pip install -e '.[dev]'"
    if reason is None:
        return
    if os.environ.get("VAECAM_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser test required but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh temporary --user-data-dir.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_FLAGS)
        yield launched
        launched.close()
