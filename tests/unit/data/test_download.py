"""Downloads and digests, on local files only (``file://`` URLs): nothing touches the network."""

import hashlib

import pytest

from vaecam.data.download import fetch, file_digest, verify_checksum
from vaecam.errors import DataError


def test_file_digest_matches_hashlib_on_data_larger_than_one_block(tmp_path):
    payload = bytes(range(256)) * 5000  # 1.28 MB: more than one 1 MiB block
    path = tmp_path / "file.bin"
    path.write_bytes(payload)
    assert file_digest(path) == hashlib.sha256(payload).hexdigest()
    assert file_digest(path, "md5") == hashlib.md5(payload).hexdigest()


def test_checksum_mismatch_is_one_line_with_both_digests_and_the_advice(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"dsprites")
    good = hashlib.sha256(b"dsprites").hexdigest()
    verify_checksum(path, good)
    verify_checksum(path, good.upper())
    with pytest.raises(DataError) as excinfo:
        verify_checksum(path, "0" * 64, advice="fetch it again")
    message = str(excinfo.value)
    assert "\n" not in message
    assert f"has sha256 {good}, expected {'0' * 64}: fetch it again" in message


def test_fetch_streams_the_file_and_returns_its_sha256(tmp_path):
    payload = bytes(range(256)) * 5000
    source = tmp_path / "source.bin"
    source.write_bytes(payload)
    target = tmp_path / "copy.part"
    assert fetch(source.as_uri(), target, "retry") == hashlib.sha256(payload).hexdigest()
    assert target.read_bytes() == payload


def test_failed_fetch_leaves_no_partial_file(tmp_path):
    target = tmp_path / "copy.part"
    with pytest.raises(DataError) as excinfo:
        fetch((tmp_path / "missing.bin").as_uri(), target, "download it by hand")
    message = str(excinfo.value)
    assert message.startswith("could not download file://") and "\n" not in message
    assert message.endswith("; download it by hand")
    assert not target.exists()
