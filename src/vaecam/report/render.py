"""Render a :class:`~vaecam.report.document.Document` as Markdown and as self-contained HTML.

Both come from Jinja2 templates in ``templates/`` (HTML with autoescaping on); tables render
themselves (:class:`~vaecam.report.table.Table`), the same way in a report as elsewhere. The
HTML page needs nothing outside itself: figures are embedded as ``data:`` URIs, the CSS is
inline, there is no script, and its Content-Security-Policy forbids loading anything else. The
Markdown file links its figures relative to its own folder.
"""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from vaecam.errors import DataError
from vaecam.outputs import atomic_write_text
from vaecam.report.document import Document, Figure, outline
from vaecam.report.table import markdown_literal
from vaecam.report.tables import write_json

_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".svg": "image/svg+xml"}
_SIGNATURES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


@dataclass(frozen=True)
class ReportFiles:
    """The three files a report consists of."""

    markdown: Path
    html: Path
    results: Path


def image_data_uri(path: Path) -> str:
    """The image at ``path`` as a ``data:`` URI (PNG, JPEG or SVG, checked by content)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"figure {path} does not exist; write it before rendering the report")
    mime = _IMAGE_TYPES.get(path.suffix.lower())
    if mime is None:
        raise DataError(f"figure {path} is not a PNG, JPEG or SVG file; save it as PNG")
    data = path.read_bytes()
    signature = _SIGNATURES.get(mime)
    valid = data.startswith(signature) if signature else data.lstrip().startswith(b"<")
    if not valid:
        raise DataError(f"figure {path} is empty or not a valid {mime} file; write it again")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def render_markdown(doc: Document, out_dir: Path) -> str:
    """``report.md`` text; figures are linked relative to ``out_dir`` and must exist."""
    out_dir = Path(out_dir).resolve()

    def link(figure: Figure) -> str:
        target = _figure_file(figure, out_dir)
        return quote(Path(os.path.relpath(target, out_dir)).as_posix(), safe="/")

    return _render("report.md", doc, link).rstrip() + "\n"


def render_html(doc: Document, base_dir: Path | None = None) -> str:
    """``report.html`` text with every figure embedded.

    Relative figure paths are taken relative to ``base_dir`` (default: the working directory).
    """
    base = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    return _render("report.html", doc, lambda figure: image_data_uri(_figure_file(figure, base)))


def write_report(doc: Document, out_dir: Path, data: Mapping[str, Any]) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and ``results.json`` (``data``) into ``out_dir``.

    Both pages are rendered before anything is written, so a missing figure leaves the folder
    as it was; each file is written atomically.
    """
    out_dir = Path(out_dir).resolve()
    markdown = render_markdown(doc, out_dir)
    html = render_html(doc, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return ReportFiles(
        markdown=atomic_write_text(out_dir / "report.md", markdown),
        html=atomic_write_text(out_dir / "report.html", html),
        results=write_json(out_dir / "results.json", data),
    )


def _figure_file(figure: Figure, base: Path) -> Path:
    path = Path(figure.path)
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise DataError(f"figure {path} ({figure.caption!r}) does not exist; "
                        "write it before rendering the report")
    return path


def _render(template: str, doc: Document, figure_src: Callable[[Figure], str]) -> str:
    return _environment().get_template(template).render(
        doc=doc, outline=outline(doc), figure_src=figure_src)


@functools.cache
def _environment() -> Environment:
    """One Jinja2 environment for both templates; autoescaping is on for ``*.html``."""
    env = Environment(
        loader=PackageLoader("vaecam.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = markdown_literal
    return env
