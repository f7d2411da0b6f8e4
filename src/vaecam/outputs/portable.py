"""Paths in written files and reports, so that they say nothing about the machine they ran on.

A report is read on other machines (committed, mailed, opened from a phone): a path such as
``/home/ann/runs/cpu/mnist`` tells the reader nothing and leaks the machine's layout. Every path
a report prints is therefore rewritten relative to a named base: ``$OUT`` (the folder given to
``--out``, which holds the report), ``$DATA`` (the data root given to ``--data``), the working
directory the command ran in (a plain relative path), or the home folder (``~``). The longest
matching base wins, so a data root inside the output folder reads ``$DATA/...``.

Files that vaecam reads back (stage records, ``train_config.json``, ``score.json``) use
:meth:`PortablePaths.anchored`: only ``$OUT``, ``$OUT/..`` (a folder beside or above --out)
and ``$DATA``, which :func:`resolve_paths` turns back into paths wherever the folder now lies.
A path that shares no folder with --out (other than ``/``) nor lies in the data root is kept as
it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

OUT = "$OUT"
DATA = "$DATA"


class PortablePaths:
    """Rewrites absolute paths under known folders in strings, lists and dicts."""

    def __init__(self, out: Path | str, data: Path | str | None = None,
                 cwd: Path | str | None = None, home: Path | str | None = None,
                 parents: int = 0, anchors_only: bool = False):
        bases = {OUT: out, DATA: data}
        if not anchors_only:
            bases.update({"": cwd if cwd is not None else Path.cwd(),
                          "~": home if home is not None else Path.home()})
        # ``parents`` levels above --out: a sibling folder (the checkpoints beside a localize
        # folder) reads $OUT/../NAME
        above = Path(os.path.abspath(os.path.expanduser(str(out))))
        for level in range(1, parents + 1):
            above = above.parent
            bases[OUT + "/.." * level] = above
        named = {(name, spelling) for name, path in bases.items() if path
                 for spelling in _spellings(path)}
        # the longest base first: a data root inside --out reads $DATA, not $OUT/data
        self._bases = sorted([(name, path) for name, path in named if path != "/"],
                             key=lambda item: (-len(item[1]), item[0]))
        self._pattern = re.compile("|".join(
            re.escape(path) + _END for _, path in self._bases) or r"(?!x)x")

    @classmethod
    def anchored(cls, out: Path | str, data: Path | str | None = None) -> PortablePaths:
        """Paths of a file vaecam reads back: relative to ``out`` (``$OUT``, or ``$OUT/..``
        up to the folder below ``/``) or to ``data`` (``$DATA``); never relative to the working
        directory or the home folder, which differ from one command to the next."""
        depth = len(Path(os.path.abspath(os.path.expanduser(str(out)))).parts) - 2
        return cls(out, data, parents=max(depth, 0), anchors_only=True)

    def text(self, value: str) -> str:
        """``value`` with every known absolute path rewritten against its base."""
        return self._pattern.sub(self._replace, value)

    def __call__(self, value: Any) -> Any:
        """A copy of ``value`` (str, Path, list, tuple, dict, scalar) with paths rewritten."""
        if isinstance(value, (str, Path)):
            return self.text(str(value))
        if isinstance(value, Mapping):
            return {self(k) if isinstance(k, str) else k: self(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        return value

    def _replace(self, match: re.Match[str]) -> str:
        found = match.group(0)
        name = next(name for name, path in self._bases if path == found)
        return name or "."

    def legend(self) -> str:
        """One sentence saying what the placeholders stand for."""
        names = [name for name, _ in self._bases]
        parts = [f"{OUT} is the folder that holds this report (--out)"]
        if DATA in names:
            parts.append(f"{DATA} the data root (--data)")
        parts.append("relative paths start at the folder the command ran in")
        return "Paths: " + "; ".join(parts) + "."


def resolve_paths(value: Any, out: Path | str, data: Path | str | None = None) -> Any:
    """A copy of ``value`` whose strings ``$OUT[/...]`` and ``$DATA[/...]`` are absolute paths
    again (``$OUT`` standing for ``out``, ``$DATA`` for ``data``); other values are kept, so an
    earlier file that holds absolute paths reads the same."""
    if isinstance(value, str):
        for name, base in ((OUT, out), (DATA, data)):
            if base is not None and (value == name or value.startswith(name + "/")):
                root = os.path.abspath(os.path.expanduser(str(base)))
                return os.path.normpath(root + value[len(name):])
        return value
    if isinstance(value, Mapping):
        return {k: resolve_paths(v, out, data) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve_paths(v, out, data) for v in value]
    return value


# a path ends where a name cannot go on: end of text, a separator, a quote, a space...
_END = r"(?=$|[/\s\"'=:,;)\]}&<])"


def _spellings(path: Path | str) -> set[str]:
    """The absolute path as given and with its links resolved (``/tmp`` may be a link)."""
    absolute = os.path.normpath(os.path.abspath(os.path.expanduser(str(path))))
    return {absolute, os.path.realpath(absolute)}
