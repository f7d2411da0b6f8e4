"""The library's import boundaries: it never imports its command line, nor pyplot."""

from __future__ import annotations

import ast
from pathlib import Path

import vaecam

PACKAGE = Path(vaecam.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    package = list(path.relative_to(PACKAGE.parent).parts[:-1])  # what "." means in path
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _modules_importing(prefix: str, skip: str | None = None) -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if skip and relative.startswith(skip):
            continue
        if any(name == prefix or name.startswith(prefix + ".") for name in
               _imported_modules(path)):
            found.append(relative)
    return found


def test_no_library_module_imports_the_cli():
    assert _modules_importing("vaecam.cli", skip="cli/") == ["__main__.py"]


def test_no_module_imports_pyplot_or_switches_the_backend():
    assert _modules_importing("matplotlib.pyplot") == []
    uses = [p.name for p in PACKAGE.rglob("*.py") if "matplotlib.use(" in p.read_text("utf-8")]
    assert uses == []
