"""Reports print paths relative to --out, the data root or the working directory."""

from __future__ import annotations

from pathlib import Path

from vaecam.outputs.portable import PortablePaths, resolve_paths


def _paths() -> PortablePaths:
    return PortablePaths(out="/tmp/x", data="/srv/shared/data", cwd="/work/main",
                         home="/home/ann")


def test_each_base_gets_its_placeholder_and_the_longest_base_wins():
    portable = _paths()
    assert portable.text("/tmp/x/mnist/localize_digit1/results.json") == (
        "$OUT/mnist/localize_digit1/results.json")
    assert portable.text("--data /srv/shared/data/ucsd/UCSDped2 --out /tmp/x") == (
        "--data $DATA/ucsd/UCSDped2 --out $OUT")
    assert portable.text("--config ucsd=/work/main/docs/seeds.yaml") == (
        "--config ucsd=./docs/seeds.yaml")
    assert portable.text("/home/ann/cache/mnist.npz") == "~/cache/mnist.npz"
    inside = PortablePaths(out="/tmp/x", data="/tmp/x/data", cwd="/", home="/nonexistent")
    assert inside.text("/tmp/x/data/mvtec and /tmp/x/mvtec") == "$DATA/mvtec and $OUT/mvtec"


def test_a_longer_name_that_starts_like_a_base_is_left_alone():
    portable = _paths()
    assert portable.text("/tmp/xy/file and /work/mainline") == "/tmp/xy/file and /work/mainline"
    assert portable.text('&#34;/tmp/x&#34; "/tmp/x"') == '&#34;$OUT&#34; "$OUT"'


def test_nested_data_is_rewritten_keys_and_values_and_other_values_are_kept():
    portable = _paths()
    data = {"out": Path("/tmp/x"), "runs": ["/tmp/x/seed0", 3, None],
            "/srv/shared/data": {"ok": True, "ratio": 0.5}}
    assert portable(data) == {"out": "$OUT", "runs": ["$OUT/seed0", 3, None],
                              "$DATA": {"ok": True, "ratio": 0.5}}


def test_the_root_folder_is_never_a_base_and_no_data_root_is_fine():
    portable = PortablePaths(out="/tmp/x", data=None, cwd="/", home="/")
    assert portable.text("/etc/hosts /tmp/x/a") == "/etc/hosts $OUT/a"
    assert "$DATA" not in portable.legend() and "$OUT" in portable.legend()


def test_folders_beside_out_read_from_out_upwards_when_asked():
    portable = PortablePaths(out="/tmp/run/mnist/localize_digit1", data=None, cwd="/",
                             home="/nonexistent", parents=2)
    assert portable.text("/tmp/run/mnist/digit1/seed0 /tmp/run/x /tmp/other") == (
        "$OUT/../digit1/seed0 $OUT/../../x /tmp/other")


def test_anchored_paths_use_only_out_and_data_and_resolve_back():
    portable = PortablePaths.anchored("/tmp/run/out", "/tmp/run/out/data")
    text = portable.text("/tmp/run/out/a /tmp/run/out/data/b /tmp/run/other /home/ann/c")
    assert text == "$OUT/a $DATA/b $OUT/../other /home/ann/c"
    record = {"run": "$OUT/mnist/seed0", "data": ["$DATA/ucsd", "$OUT/../other"],
              "name": "mnist/seed0", "old": "/srv/abs", "text": "see $OUT", "n": 3}
    assert resolve_paths(record, "/srv/moved/out", "/srv/moved/out/data") == {
        "run": "/srv/moved/out/mnist/seed0", "data": ["/srv/moved/out/data/ucsd",
                                                      "/srv/moved/other"],
        "name": "mnist/seed0", "old": "/srv/abs", "text": "see $OUT", "n": 3}
    assert resolve_paths("$DATA/x", "/srv/out") == "$DATA/x"  # no data root: kept


def test_anchored_paths_ignore_the_working_directory_and_home(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    portable = PortablePaths.anchored("/srv/out")
    assert portable.text(f"{tmp_path}/x") == f"{tmp_path}/x"
