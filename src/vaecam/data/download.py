"""Fetching public data files and checking their digests (used by the dSprites and UCSD loaders).

Every failure is one :class:`DataError` line that ends with what the user can do about it.
"""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

from vaecam.errors import DataError

_BLOCK = 1 << 20  # 1 MiB reads, for hashing and for streaming downloads


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: Path, expected: str, algorithm: str = "sha256",
                    advice: str = "the file is corrupt; delete it and download it again") -> None:
    """Raise :class:`DataError` (ending in ``advice``) unless the file's digest is ``expected``."""
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise DataError(f"{path} has {algorithm} {actual}, expected {expected}: {advice}")


def fetch(url: str, target: Path, advice: str, timeout: float = 60) -> str:
    """Stream ``url`` into ``target`` and return the SHA-256 of what was written.

    When the download fails, the partial ``target`` is removed and a :class:`DataError` says
    why, followed by ``advice``.
    """
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            while chunk := response.read(_BLOCK):
                digest.update(chunk)
                out.write(chunk)
    except (OSError, ValueError) as exc:
        Path(target).unlink(missing_ok=True)
        reason = " ".join(str(exc).split())
        raise DataError(f"could not download {url} ({reason}); {advice}") from exc
    return digest.hexdigest()
