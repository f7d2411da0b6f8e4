"""vaecam's packages import one way: each layer may import only the layers below it.

The table is the one in docs/architecture.md; a new import that climbs a layer fails here with
the file and the line, so the picture in the docs stays true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[3] / "src" / "vaecam"

# package -> the vaecam packages it may import (besides itself); from docs/architecture.md
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "outputs": {"errors"},
    "configs": {"errors"},
    "models": {"errors"},
    "losses": {"errors"},
    "data": {"errors", "outputs"},
    "attention": {"errors", "models"},
    "metrics": {"errors", "models", "data"},
    "maps": {"errors", "models", "attention", "metrics"},
    "training": {"errors", "outputs", "models", "losses", "data", "attention", "metrics"},
    "viz": {"errors", "data"},
    "report": {"errors", "outputs", "metrics", "maps", "viz"},
    "experiments": {"errors", "outputs", "configs", "models", "losses", "data", "attention",
                    "metrics", "maps", "training", "viz", "report"},
    "reproduce": {"errors", "outputs", "configs", "models", "data", "maps", "metrics",
                  "training", "viz", "report", "experiments"},
    "cli": {"errors", "outputs", "configs", "models", "data", "maps", "metrics", "training",
            "viz", "report", "experiments", "reproduce"},
    "__init__": {"attention", "errors", "maps", "metrics", "models"},
    "__main__": {"cli"},
}


def _package(path: Path) -> str:
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported vaecam package) of every absolute or relative import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = path.relative_to(SRC).parent.parts
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = list(here[: len(here) - node.level + 1])
                names = [".".join(["vaecam", *base, *(node.module or "").split(".")]).strip(".")]
                if not base and not node.module:
                    names = [f"vaecam.{alias.name}" for alias in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "vaecam" and len(parts) > 1 and parts[1]:
                found.append((node.lineno, parts[1].removesuffix(".py")))
    return found


FILES = sorted(SRC.rglob("*.py"))


def test_every_package_has_a_rule():
    assert {_package(f) for f in FILES} <= set(ALLOWED)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(SRC).as_posix())
def test_imports_only_go_down(path: Path):
    package = _package(path)
    wrong = [f"{path.relative_to(SRC)}:{line} imports vaecam.{target}"
             for line, target in _imports(path)
             if target != package and target not in ALLOWED[package]]
    assert not wrong, "; ".join(wrong)
