"""The rules of an output folder's manifest, checked on plain files (no training)."""

from __future__ import annotations

import json

import pytest

from vaecam.errors import ConfigError
from vaecam.outputs import MARKER, FolderLock, OutputFolder, atomic_share, atomic_write_text
from vaecam.outputs.atomic import remove_stale_temporaries
from vaecam.outputs.lock import LOCK_NAME, FolderBusyError


def _write(folder, *names):
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_the_lock_file_goes_with_the_lock(tmp_path):
    with FolderLock(tmp_path):
        assert (tmp_path / LOCK_NAME).is_file()
        with pytest.raises(FolderBusyError):
            FolderLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_NAME).exists()
    (tmp_path / LOCK_NAME).write_text("12345")  # left by a killed process: not locked
    with FolderLock(tmp_path):
        pass
    assert not (tmp_path / LOCK_NAME).exists()


def test_overwrite_deletes_listed_files_and_only_folders_vaecam_created(tmp_path):
    out = tmp_path / "out"
    (out / "yours").mkdir(parents=True)
    with OutputFolder(out, "cmd"):
        _write(out, "a.txt", "sub/b.txt", "sub/deeper/c.txt")
    marker = json.loads((out / MARKER).read_text())
    assert marker["files"] == ["a.txt", "sub/b.txt", "sub/deeper/c.txt"]
    assert marker["folders"] == ["sub", "sub/deeper"] and marker["kept_folders"] == ["yours"]
    with OutputFolder(out, "cmd", overwrite=True):
        assert sorted(p.name for p in out.iterdir()) == [MARKER, LOCK_NAME, "yours"]


def test_a_manifest_of_an_earlier_version_lists_files_only(tmp_path):
    out = tmp_path / "out"
    _write(out, "a.txt", "sub/b.txt")
    (out / "empty_of_yours").mkdir()
    (out / MARKER).write_text(json.dumps({"command": "cmd", "files": ["a.txt", "sub/b.txt"]}))
    with OutputFolder(out, "cmd", overwrite=True):
        pass
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "empty_of_yours"]


def test_a_failed_command_that_wrote_nothing_leaves_nothing(tmp_path):
    out = tmp_path / "new" / "out"
    with pytest.raises(RuntimeError), OutputFolder(out, "cmd"):
        (out / "made").mkdir()
        raise RuntimeError("boom")
    assert not out.exists() and (tmp_path / "new").is_dir()
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(RuntimeError), OutputFolder(existing, "cmd"):
        raise RuntimeError("boom")
    assert existing.is_dir() and not any(existing.iterdir())


def test_a_killed_commands_files_are_its_own_and_the_users_stay_foreign(tmp_path):
    out = tmp_path / "out"
    _write(out, "notes.txt")
    claim = OutputFolder(out, "cmd", keep=True)
    claim.__enter__()
    _write(out, "log.csv")
    claim._lock.release()  # killed: the manifest is never finished
    assert json.loads((out / MARKER).read_text())["state"] == "writing"
    with pytest.raises(ConfigError, match="did not write \\(e.g. 'notes.txt'\\)"):
        OutputFolder(out, "cmd", overwrite=True).__enter__()
    (out / "notes.txt").unlink()
    with OutputFolder(out, "cmd", overwrite=True):
        assert not (out / "log.csv").exists()


def test_only_temporaries_named_as_vaecam_names_them_are_stale(tmp_path):
    (tmp_path / ".last.ckpt.k2j4_x9a.tmp").write_text("left by a kill")
    (tmp_path / ".my.tmp").write_text("the user's")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".last.ckpt.k2j4_x9a.tmp"]
    assert (tmp_path / ".my.tmp").exists()


def test_a_shared_file_keeps_its_bytes_when_the_source_is_rewritten(tmp_path):
    last, best = tmp_path / "last.ckpt", tmp_path / "best.ckpt"
    atomic_write_text(last, "epoch 1")
    atomic_share(last, best)
    assert best.read_text() == "epoch 1" and best.stat().st_nlink == 2  # one copy on disk
    atomic_write_text(last, "epoch 2")
    assert best.read_text() == "epoch 1" and last.read_text() == "epoch 2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt", "last.ckpt"]
