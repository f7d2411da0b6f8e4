"""Output folders that never lose earlier results silently."""

from __future__ import annotations

import shutil
from pathlib import Path

from vaecam.errors import ConfigError


def prepare_output_dir(out: Path, overwrite: bool) -> Path:
    """An empty results folder (absolute, so records name it fully).

    A folder that already holds files is replaced only when ``overwrite`` is set; otherwise the
    user is told to pass ``--overwrite`` or choose another ``--out``.
    """
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; choose a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"{out} is not empty; pass --overwrite or choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out
