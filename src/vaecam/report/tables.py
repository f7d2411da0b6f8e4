"""Table cell numbers and JSON result files (tables themselves: :mod:`vaecam.report.table`)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vaecam.outputs import atomic_write_text


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats rounded, missing values as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """Write results as indented JSON, atomically (a full disk leaves the old file intact)."""
    return atomic_write_text(Path(path), json.dumps(data, indent=2, default=str) + "\n")
