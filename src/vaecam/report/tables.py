"""Markdown tables and JSON result files."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
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


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v, digits) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """Write results as indented JSON, atomically (a full disk leaves the old file intact)."""
    return atomic_write_text(Path(path), json.dumps(data, indent=2, default=str) + "\n")
