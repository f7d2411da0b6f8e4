"""The recipes of docs/own-model.md run as written (no download)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "own-model.md"
RECIPES = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_page_has_three_recipes():
    assert len(RECIPES) == 3


@pytest.mark.parametrize("code", [
    pytest.param(RECIPES[0], id="diffusers", marks=pytest.mark.slow),  # a slow import
    pytest.param(RECIPES[1], id="pythae-style"),
    pytest.param(RECIPES[2], id="plain"),
])
def test_recipe_runs(code):
    if "from diffusers" in code and importlib.util.find_spec("diffusers") is None:
        pytest.skip("diffusers is not installed (a dev dependency: pip install diffusers)")
    exec(compile(code, str(DOC), "exec"), {"__name__": "recipe"})
