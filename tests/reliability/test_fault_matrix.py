"""The fault matrix (see ``faults.py``), each case run in this process on generated data.

``scripts/fault_matrix.py`` runs the same cases as separate processes.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from faults import CASES, Killed, Result, Workspace, fault

from vaecam.cli import main

pytestmark = pytest.mark.slow  # a few seconds a case, after one smoke training


def run_in_process(argv: Sequence[str], fault_name: str | None) -> Result:
    """``vaecam ARGV`` in this process, with what it prints on stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            fault(fault_name, in_process=True):
        try:
            code = main(list(argv))
        except Killed:
            code = -9
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def workspace(module_tmp_path: Path) -> Workspace:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Workspace(module_tmp_path, run_in_process)
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", list(CASES))
def test_fault_case(workspace, name):
    CASES[name](workspace)
