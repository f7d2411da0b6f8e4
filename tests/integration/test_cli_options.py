"""One error contract for every option: a bad value is one line ``vaecam: error: ...``, exit 2.

Walks every sub-command's options and gives each a value its schema refuses; then checks the
same rules on YAML config values, unknown keys, options that fail only at run time (a GPU that
is not there, an --out that is a file or cannot be written), and the quick ``--version``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from vaecam.cli import build_parser, main
from vaecam.configs.schema import OPTIONS, flag

# Values every refused option gets tried with, by the kind of check it has.
BAD_BY_KIND = {
    "integer": ["-7", "abc", "2.5"],
    "real": ["nan", "-1", "inf", "x"],
    "choice": ["nonsense"],
    "devices": ["0", "two"],
    "pairs": ["0", "many"],
    "device": ["tpu"],
    "text": [""],
    "path": [""],
}
# Valid values for the options a command requires (parsing stops at the bad option anyway).
REQUIRED = {"--out": "out", "--data": "data", "--checkpoint": "ck.ckpt", "--digit": "1",
            "--category": "screw", "--dest": "d"}
POSITIONAL = {("data", "synth"): ["mvtec", "out"], ("data", "download"): ["mnist"]}


def _subcommands():
    found = {}

    def walk(parser, prefix):
        subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not subs:
            found[prefix] = parser
        for action in subs:
            for name, sub in action.choices.items():
                walk(sub, (*prefix, name))

    walk(build_parser(), ())
    return found


def _kind(check) -> str:
    name = getattr(check, "__qualname__", "")
    return name.split(".")[0]


def _cases():
    for command, parser in _subcommands().items():
        required = [a for a in parser._actions if a.required and a.option_strings]
        base = [*command, *POSITIONAL.get(command, [])]
        for action in required:
            base += [action.option_strings[0], REQUIRED[action.option_strings[0]]]
        for action in parser._actions:
            spec = OPTIONS.get(action.dest)
            if not action.option_strings or spec is None or spec.check is flag:
                continue
            for bad in BAD_BY_KIND.get(_kind(spec.check), []):
                yield pytest.param(base, action.option_strings[0], bad,
                                   id=f"{' '.join(command)} {action.option_strings[0]} {bad!r}")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Relative paths of these commands land in a temporary folder, never in the repository."""
    monkeypatch.chdir(tmp_path)


def _one_line_error(capsys, args) -> str:
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vaecam: error: "), err
    return lines[0]


CASES = list(_cases())


def test_the_walk_covers_every_command():
    commands = {c.values[0][0] if c.values[0][0] in ("demo", "explain")
                else tuple(c.values[0][:2]) for c in CASES}
    assert {("train", "mnist"), ("train", "ucsd"), ("train", "mvtec"), ("train", "dsprites"),
            ("localize", "ucsd"), ("localize", "mvtec"), ("score", "dsprites"),
            ("sweep", "dsprites"), ("data", "synth"), "explain", "demo"} <= commands
    assert len(CASES) > 150


@pytest.mark.parametrize(("base", "flag_name", "bad"), CASES)
def test_every_option_refuses_bad_values_in_one_line(capsys, base, flag_name, bad):
    line = _one_line_error(capsys, [*base, flag_name, bad])
    assert flag_name in line


@pytest.mark.parametrize("args", [
    ["train", "mnist", "--digit", "1", "--out", "o", "--max-epochs", "0"],
    ["train", "mnist", "--digit", "1", "--out", "o", "--max-steps", "0"],
    ["train", "mnist", "--digit", "1", "--out", "o", "--lr", "-1"],
    ["train", "mnist", "--digit", "1", "--out", "o", "--lr", "nan"],
    ["train", "mnist", "--digit", "1", "--out", "o", "--latent-dim", "0"],
    ["train", "mnist", "--digit", "1", "--out", "o", "--latent-dim", "-5"],
    ["train", "mnist", "--digit", "1", "--out", "o", "--devices", "0"],
    ["train", "mnist", "--digit", "1", "--out", "o", "--num-workers", "-1"],
    ["train", "mnist", "--digit", "1", "--out", "o", "--precision", "8"],
    ["train", "mnist", "--digit", "1", "--out", "o", "--accelerator", "tpu"],
    ["train", "mnist", "--digit", "12", "--out", "o"],
    ["explain", "--checkpoint", "c.ckpt", "--out", "o", "--n", "0"],
    ["localize", "ucsd", "--checkpoint", "c", "--out", "o", "--batch-size", "0"],
    ["train", "mnist", "--digit", "1", "--out", "o", "--seeds"],
])
def test_the_reported_bad_options(capsys, args):
    _one_line_error(capsys, args)


def test_repeated_or_empty_seeds(capsys, tmp_path):
    line = _one_line_error(capsys, ["train", "mnist", "--digit", "1", "--preset", "smoke",
                                    "--out", str(tmp_path / "o"), "--seeds", "0", "0"])
    assert "repeats 0" in line


def test_gpu_asked_for_without_a_gpu(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    line = _one_line_error(capsys, ["train", "mnist", "--digit", "1", "--preset", "smoke",
                                    "--accelerator", "gpu", "--out", str(tmp_path / "o")])
    assert "no CUDA GPU" in line


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_yaml_values_go_through_the_same_checks(capsys, tmp_path):
    cfg = _config(tmp_path, "presets:\n  smoke:\n    train:\n      batch_size: eight\n")
    line = _one_line_error(capsys, ["train", "mnist", "--digit", "1", "--preset", "smoke",
                                    "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert "batch_size must be an integer >= 1, not 'eight'" in line


def test_unknown_yaml_key_names_the_closest_valid_key(capsys, tmp_path):
    cfg = _config(tmp_path, "presets:\n  smoke:\n    train:\n      batchsize: 8\n")
    line = _one_line_error(capsys, ["train", "mnist", "--digit", "1", "--preset", "smoke",
                                    "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert "unknown key 'batchsize' (did you mean 'batch_size'?)" in line


def test_partial_config_fills_from_the_named_preset(tmp_path):
    from vaecam.configs import load_preset

    cfg = _config(tmp_path, "presets:\n  cpu:\n    train:\n      batch_size: 8\n")
    packaged = load_preset("mnist", "cpu").options
    mine = load_preset("mnist", "cpu", cfg).options
    assert mine["batch_size"] == 8
    assert {k: v for k, v in mine.items() if k != "batch_size"} == {
        k: v for k, v in packaged.items() if k != "batch_size"}


def test_out_that_is_a_file_or_unwritable(capsys, tmp_path):
    a_file = tmp_path / "f.txt"
    a_file.write_text("user data")
    line = _one_line_error(capsys, ["train", "mnist", "--digit", "1", "--preset", "smoke",
                                    "--out", str(a_file)])
    assert "is a file" in line and a_file.read_text() == "user data"
    line = _one_line_error(capsys, ["train", "mnist", "--digit", "1", "--preset", "smoke",
                                    "--out", "/proc/vaecam-cannot-write-here"])
    assert "could not write" in line


def test_running_without_preset_names_the_preset_and_its_cost(capsys):
    try:
        main(["train", "mnist", "--digit", "1", "--out", "o", "--lr", "-1"])
    except SystemExit:
        pass
    assert capsys.readouterr().err.count("\n") == 1  # bad option: nothing but the error
    from vaecam.cli.common import merged

    args = build_parser().parse_args(["train", "mnist", "--digit", "1", "--out", "o"])
    options = merged(args, "mnist")
    err = capsys.readouterr().err
    assert options["preset"] == "cpu"
    assert "using preset 'cpu' (about" in err and "--preset smoke|cpu|paper" in err


def test_version_answers_in_under_a_second():
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "vaecam", "--version"], capture_output=True,
                          text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0 and proc.stdout.startswith("vaecam ")
    assert elapsed < 1.0, f"vaecam --version took {elapsed:.2f} s"
