"""Run the fault matrix end to end: every case of tests/reliability/faults.py, each command of it
a separate ``vaecam`` process, on data generated in a temporary folder.

Usage: python scripts/fault_matrix.py [CASE ...] [--jobs N] [--keep]

Prints one line per case as it ends (PASS or FAIL, what it checks, seconds, and why a case
failed), then ``N passed, N failed`` as the last line; exits with 1 when a case failed. Cases
run ``--jobs`` at a time (each in its own folders); ``--keep`` leaves the temporary folder in
place and names it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES_DIR = REPO / "tests" / "reliability"
sys.path.insert(0, str(CASES_DIR))

from faults import CASES, Result, Workspace  # noqa: E402

# The child process: enter the case's fault (a real SIGKILL for "killed"), then run vaecam.
CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from faults import fault
from vaecam.cli import main
with fault(sys.argv[2] or None, in_process=False):
    code = main(sys.argv[3:])
sys.exit(code)
"""


def run_process(argv: Sequence[str], fault_name: str | None) -> Result:
    """``vaecam ARGV`` as a new process of this Python, with the repository's sources first."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    args = [sys.executable, "-c", CHILD, str(CASES_DIR), fault_name or "", *argv]
    done = subprocess.run([os.fsencode(a) for a in args], capture_output=True, env=env,
                          timeout=900)
    return Result(done.returncode, done.stdout.decode(errors="replace"),
                  done.stderr.decode(errors="replace"))


def run_case(ws: Workspace, name: str) -> bool:
    """Run case ``name``, print its line, and say whether it passed."""
    case = CASES[name]
    what = case.__name__.split("_", 1)[1].replace("_", " ")
    t0 = time.perf_counter()
    try:
        case(ws)
        verdict = "PASS"
    except Exception as exc:  # noqa: BLE001 - every case is reported, the others go on
        verdict = f"FAIL ({' '.join(str(exc).split())[:300] or type(exc).__name__})"
    print(f"{verdict.split()[0]} {name}: {what} ({time.perf_counter() - t0:.0f} s)"
          f"{verdict[4:]}", flush=True)
    return verdict == "PASS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", metavar="CASE",
                        help=f"cases to run (default all): {', '.join(CASES)}")
    parser.add_argument("--jobs", type=int, default=4, help="cases run at a time (default 4)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    unknown = [name for name in args.cases if name not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]}; cases: {', '.join(CASES)}")
    names = args.cases or list(CASES)
    root = Path(tempfile.mkdtemp(prefix="vaecam-faults-"))
    ws = Workspace(root, run_process)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        verdicts = [pool.submit(run_case, ws, name) for name in names]
        failed = sum(not future.result() for future in as_completed(verdicts))
    if args.keep:
        print(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{len(names) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
