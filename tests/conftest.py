"""Shared fixtures: tiny generated datasets, and the real data in ../shared/data when present.

The session-scoped datasets are shared by many tests: treat them as read-only (copy them, or
generate a new one, to test broken layouts).
"""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from vaecam.data.synthetic import make_mvtec_like, make_ucsd_like

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="module")
def module_tmp_path(tmp_path_factory: pytest.TempPathFactory,
                    request: pytest.FixtureRequest) -> Iterator[Path]:
    """A folder for the runs one test module shares, removed when the module ends.

    A smoke checkpoint of a paper model is 50-160 MB; kept to the end of the session, the runs of
    every module would fill gigabytes of disk.
    """
    path = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def synth_mvtec_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MVTec root holding category ``synthetic``: 16 train, 4 good + 4 per defect test, 64 px."""
    root = tmp_path_factory.mktemp("mvtec")
    make_mvtec_like(root, "synthetic", n_train=16, n_test_good=4, n_test_defect=4, size=64)
    return root


@pytest.fixture(scope="session")
def synth_ucsd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``UCSDped1`` folder: 2 train and 3 test clips of 12 frames; Test003 has no masks."""
    return make_ucsd_like(tmp_path_factory.mktemp("ucsd"), "UCSDped1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository (developer machines and CI only)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (only on developer machines/CI)")
    return SHARED_DATA
