"""One table model for every table vaecam writes, rendered to Markdown, HTML and JSON.

The ``table.md`` of a localisation run, the dSprites summary and every table of the reproduce
report (``report.md``, ``report.html``) are :class:`Table` objects: :class:`Column` headers and
rows of cells. A cell is a plain value (number, text, None) or a :class:`Cell`: a value with,
optionally, its ± std, a bracketed interval, a note in parentheses after it, and a style
(``strong`` in bold, the verdict colours ``good`` / ``mixed`` / ``bad``, ``muted``; Markdown has
no colours, so there only ``strong`` shows). Floats get the column's decimals (the table's by
default), None and NaN an en dash (:func:`vaecam.report.tables.fmt`). In HTML a cell holding a
lone number is right-aligned, and an interval never breaks across lines.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar

from markupsafe import Markup, escape

from vaecam.report.tables import fmt

CELL_STYLES = ("", "strong", "good", "mixed", "bad", "muted")
ALIGNMENTS = ("", "left", "right")  # "": numbers right, text left
_MARKDOWN_RULE = {"": "---", "left": ":---", "right": "---:"}
_INTERVAL = re.compile(r"\[[^\[\]]*\]")


def markdown_literal(text: Any) -> str:
    """Plain text made literal in Markdown: no emphasis, links, raw HTML or block markers."""
    text = re.sub(r"\s*\n\s*", " ", str(text))
    text = re.sub(r"&(?=#?\w+;)", "&amp;", text)
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"([\\`*\[\]])", r"\\\1", text)
    text = re.sub(r"(?<!\w)_|_(?!\w)", r"\\_", text)
    return re.sub(r"^(\s*)([#+\-=]|\d+\.)(?=\s|$)", r"\1\\\2", text)


def html_cell(text: str) -> Markup:
    """A cell's text, escaped, with each ``[lo, hi]`` interval kept on one line: a narrow
    column then breaks before the interval, never inside it."""
    return Markup(_INTERVAL.sub(lambda m: f'<span class="interval">{m.group(0)}</span>',
                                str(escape(text))))


@dataclass(frozen=True)
class Column:
    """A column: its header, alignment (``""``: numbers right, text left), a note shown as the
    header's tooltip in HTML, and its decimals (None: the table's)."""

    header: str
    align: str = ""
    note: str = ""
    digits: int | None = None

    def __post_init__(self) -> None:
        if self.align not in ALIGNMENTS:
            raise ValueError(f"column alignment {self.align!r} is not one of {ALIGNMENTS}")


@dataclass(frozen=True)
class Cell:
    """A value with its style and, optionally, ``std`` (shown as ``± std``), ``interval``
    (``[lo, hi]``) and ``note`` (``(note)`` after the rest): ``0.812 ± 0.021 [0.780, 0.840]``."""

    value: Any
    style: str = ""
    std: float | None = None
    interval: tuple[Any, Any] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.style not in CELL_STYLES:
            raise ValueError(f"cell style {self.style!r} is not one of {CELL_STYLES}")
        if self.interval is not None:
            object.__setattr__(self, "interval", tuple(self.interval))
            if len(self.interval) != 2:
                raise ValueError(f"cell interval {self.interval!r} is not a (low, high) pair")

    def text(self, digits: int = 3) -> str:
        """The cell as it reads, numbers with ``digits`` decimals."""
        text = fmt(self.value, digits)
        if self.std is not None:
            text += f" ± {fmt(self.std, digits)}"
        if self.interval is not None:
            low, high = self.interval
            text += f" [{fmt(low, digits)}, {fmt(high, digits)}]"
        return f"{text} ({self.note})" if self.note else text

    @property
    def numeric(self) -> bool:
        """A lone number (no std, interval or note; NaN is a missing value): right-aligned."""
        return (isinstance(self.value, (int, float)) and not isinstance(self.value, bool)
                and _nan_as_none(self.value) is not None
                and self.std is None and self.interval is None and not self.note)

    def to_json(self) -> dict[str, Any]:
        """The fields that differ from their defaults (``value`` always); NaN as null."""
        data = {"value": _nan_as_none(self.value)}
        for f in fields(self)[1:]:
            value = getattr(self, f.name)
            if value != f.default:
                data[f.name] = ([_nan_as_none(v) for v in value] if f.name == "interval"
                                else _nan_as_none(value))
        return data


@dataclass(frozen=True)
class RenderedCell:
    """What renderers draw: the cell's text, style and whether it is right-aligned."""

    text: str
    style: str
    numeric: bool

    @property
    def css_class(self) -> str:
        return " ".join(filter(None, ("num" if self.numeric else "", self.style)))


@dataclass(frozen=True)
class Table:
    """Rows of values (numbers, text, None, or :class:`Cell`) under ``columns`` (a
    :class:`Column` or just its header), with a caption; floats get ``digits`` decimals unless
    their column says otherwise."""

    columns: Sequence[Column | str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""
    digits: int = 3
    kind: ClassVar[str] = "table"

    def __post_init__(self) -> None:
        columns = tuple(c if isinstance(c, Column) else Column(str(c)) for c in self.columns)
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "rows", tuple(tuple(row) for row in self.rows))
        for i, row in enumerate(self.rows):
            if len(row) != len(columns):
                raise ValueError(f"table {self.caption!r}: row {i} has {len(row)} cells "
                                 f"for {len(columns)} headers")

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def body(self) -> list[list[RenderedCell]]:
        """The rows as formatted cells."""
        return [[self._render(value, column) for value, column in zip(row, self.columns,
                                                                      strict=True)]
                for row in self.rows]

    def _render(self, value: Any, column: Column) -> RenderedCell:
        cell = value if isinstance(value, Cell) else Cell(value)
        digits = self.digits if column.digits is None else column.digits
        numeric = column.align == "right" or (column.align == "" and cell.numeric)
        return RenderedCell(cell.text(digits), cell.style, numeric)

    def to_markdown(self, escape: bool = True) -> str:
        """A Markdown table (the caption in italics above it). ``escape`` makes every text
        literal (for a report); without it text is written as it is, pipes escaped."""

        def text(value: Any) -> str:
            return (markdown_literal(value) if escape else str(value)).replace("|", "\\|")

        def cell(rendered: RenderedCell) -> str:
            shown = text(rendered.text)
            return f"**{shown}**" if rendered.style == "strong" and shown else shown

        lines = [f"*{markdown_literal(self.caption) if escape else self.caption}*", ""] \
            if self.caption else []
        lines.append("| " + " | ".join(text(h) for h in self.headers) + " |")
        lines.append("|" + "".join(_MARKDOWN_RULE[c.align] + "|" for c in self.columns))
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in self.body()]
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        """The Markdown of ``table.md`` files: text as it is (:meth:`to_markdown`)."""
        return self.to_markdown(escape=False)

    def to_html(self) -> Markup:
        """The table in a scrolling region, every text escaped; the caption above it."""
        lines = [f'<p class="block-caption table-caption">{escape(self.caption)}</p>'] \
            if self.caption else []
        lines += [f'<div class="table-scroll" role="region" tabindex="0" '
                  f'aria-label="{escape(self.caption or "table")}">', "<table>",
                  "<thead><tr>" + "".join(_header_html(c) for c in self.columns)
                  + "</tr></thead>", "<tbody>"]
        lines += ["<tr>" + "".join(_cell_html(c) for c in row) + "</tr>" for row in self.body()]
        lines += ["</tbody>", "</table>", "</div>"]
        return Markup("\n".join(lines))

    def to_json(self) -> dict[str, Any]:
        """Columns, rows (a plain value as it is, a :class:`Cell` as a dict; NaN as null, which
        reads the same) and caption; :meth:`from_json` reads it back."""
        return {"caption": self.caption, "digits": self.digits,
                "columns": [asdict(c) for c in self.columns],
                "rows": [[v.to_json() if isinstance(v, Cell) else _nan_as_none(v) for v in row]
                         for row in self.rows]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Table:
        return cls([Column(**c) for c in data["columns"]],
                   [[Cell(**v) if isinstance(v, Mapping) else v for v in row]
                    for row in data["rows"]],
                   caption=data.get("caption", ""), digits=data.get("digits", 3))

    def map_text(self, change: Callable[[str], str]) -> Table:
        """A copy with ``change`` applied to every text: headers, column notes, text cells
        (paths as text), cell notes and the caption."""

        def value(v: Any) -> Any:
            return change(os.fspath(v)) if isinstance(v, (str, os.PathLike)) else v

        def cell(v: Any) -> Any:
            if isinstance(v, Cell):
                return replace(v, value=value(v.value), note=change(v.note))
            return value(v)

        columns = [replace(c, header=change(c.header), note=change(c.note))
                   for c in self.columns]
        return replace(self, columns=columns, rows=[[cell(v) for v in row] for row in self.rows],
                       caption=change(self.caption))


def _nan_as_none(value: Any) -> Any:
    """None for NaN (JSON has no NaN; both read as an en dash), else the value."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _cell_html(cell: RenderedCell) -> str:
    css = f' class="{cell.css_class}"' if cell.css_class else ""
    return f"<td{css}>{html_cell(cell.text)}</td>"


def _header_html(column: Column) -> str:
    title = f' title="{escape(column.note)}"' if column.note else ""
    return f'<th scope="col"{title}>{escape(column.header)}</th>'

