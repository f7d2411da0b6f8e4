"""The report as data: a document of sections and blocks, rendered to Markdown and HTML.

Experiments fill a :class:`Document`; :mod:`vaecam.report.render` turns it into ``report.md`` and
a self-contained ``report.html``. Blocks hold plain text (never markup), so renderers escape it.
A table block is the :class:`~vaecam.report.table.Table` of every vaecam table; it renders itself.
Section anchors are slugs of the titles, prefixed by the parent's anchor
(``mvtec-ad`` > ``mvtec-ad-carpet``): stable when other sections come or go, unique by
construction except for siblings sharing a title, which :func:`outline` rejects.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from vaecam.report.table import Table
from vaecam.report.tables import fmt

TONES = ("good", "mixed", "bad", "neutral")
NOTE_LEVELS = ("note", "warning")
RESERVED_ANCHORS = frozenset({"contents", "contents-title"})  # the table of contents
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# Verdict words whose colour is implied; any other word is "neutral" unless a tone is given.
_VERDICT_TONES = {
    "reproduced": "good", "confirmed": "good", "supported": "good", "holds": "good",
    "partly reproduced": "mixed", "partly": "mixed", "partial": "mixed", "mixed": "mixed",
    "not reproduced": "bad", "refuted": "bad", "contradicted": "bad", "not supported": "bad",
}


def slugify(text: str) -> str:
    """ASCII words joined by hyphens: ``"MVTec-AD: carpet"`` -> ``"mvtec-ad-carpet"``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join(re.findall(r"[a-z0-9]+", ascii_text.lower())) or "section"


def mean_std(mean: float | None, std: float | None, digits: int = 3) -> str:
    """``"0.812 ± 0.021"``; a missing std gives the mean alone, a missing mean an en dash."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return fmt(None)
    if std is None or math.isnan(std):
        return fmt(float(mean), digits)
    return f"{fmt(float(mean), digits)} ± {fmt(float(std), digits)}"


def interval(low: float | None, high: float | None, digits: int = 3) -> str:
    """A closed interval, ``"[0.780, 0.840]"`` (e.g. a bootstrap or min..max over seeds)."""
    return f"[{fmt(_float(low), digits)}, {fmt(_float(high), digits)}]"


def format_duration(seconds: float) -> str:
    """Wall time for people: ``"42.0 s"``, ``"3 min 05 s"``, ``"1 h 02 min 03 s"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    return f"{minutes} min {secs:02d} s"


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _one_line(text: str, what: str) -> str:
    if "\n" in text or "\r" in text:
        raise ValueError(f"{what} must be one line, got {text!r}")
    return text


@dataclass(frozen=True)
class Paragraph:
    """Plain text; blank lines are kept as paragraph breaks."""

    text: str
    kind: ClassVar[str] = "paragraph"

    def paragraphs(self) -> list[str]:
        return [part.strip() for part in re.split(r"\n\s*\n", self.text) if part.strip()]


@dataclass(frozen=True)
class Figure:
    """An image file (PNG, JPEG or SVG) with its caption and alternative text.

    A relative ``path`` is taken relative to the report's folder. The file must exist when the
    report is rendered (HTML embeds it, Markdown links to it).
    """

    path: Path
    caption: str
    alt: str = ""
    kind: ClassVar[str] = "figure"

    @property
    def alt_text(self) -> str:
        return self.alt or self.caption


@dataclass(frozen=True)
class Verdict:
    """One claim of the paper, the verdict on it and the numbers behind it (one line each).

    ``tone`` colours the verdict (good / mixed / bad / neutral); by default it follows the
    verdict word (``reproduced`` good, ``partly reproduced`` mixed, ``not reproduced`` bad).
    """

    claim: str
    verdict: str
    evidence: str
    tone: str = ""
    kind: ClassVar[str] = "verdict"

    def __post_init__(self) -> None:
        for what in ("claim", "verdict", "evidence"):
            _one_line(getattr(self, what), f"verdict {what}")
        if self.tone and self.tone not in TONES:
            raise ValueError(f"verdict tone {self.tone!r} is not one of {TONES}")

    @property
    def resolved_tone(self) -> str:
        return self.tone or _VERDICT_TONES.get(self.verdict.strip().lower(), "neutral")


@dataclass(frozen=True)
class KeyValues:
    """Named values (environment, settings); non-string values are formatted like cells."""

    items: Mapping[str, Any]
    caption: str = ""
    kind: ClassVar[str] = "keyvalues"

    def pairs(self) -> list[tuple[str, str]]:
        return [(str(k), fmt(v) if not isinstance(v, str) else v) for k, v in self.items.items()]


@dataclass(frozen=True)
class CodeBlock:
    """Verbatim text: a command to run, a JSON config (``language`` names it: bash, json)."""

    code: str
    language: str = ""
    caption: str = ""
    kind: ClassVar[str] = "code"

    def fence(self) -> str:
        """A Markdown fence longer than any run of backticks inside the code."""
        longest = max((len(run) for run in re.findall(r"`+", self.code)), default=0)
        return "`" * max(3, longest + 1)


@dataclass(frozen=True)
class Note:
    """A remark set apart from the text; ``level="warning"`` for problems (a collapsed latent)."""

    text: str
    level: str = "note"
    kind: ClassVar[str] = "note"

    def __post_init__(self) -> None:
        if self.level not in NOTE_LEVELS:
            raise ValueError(f"note level {self.level!r} is not one of {NOTE_LEVELS}")


Block = Paragraph | Table | Figure | Verdict | KeyValues | CodeBlock | Note


@dataclass
class Section:
    """A titled part of the report; ``anchor`` overrides the slug made from the title."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    subsections: list[Section] = field(default_factory=list)
    anchor: str = ""

    def __post_init__(self) -> None:
        _one_line(self.title, "section title")
        if self.anchor and not _SLUG.fullmatch(self.anchor):
            raise ValueError(f"section anchor {self.anchor!r} must be lower-case words "
                             "joined by hyphens")


@dataclass
class Document:
    """The whole report: title, opening blocks, sections, and metadata shown under the title
    (e.g. vaecam version, git commit, date)."""

    title: str
    intro: list[Block] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutlineNode:
    """A section with its resolved anchor and heading level (2 for top-level sections)."""

    section: Section
    anchor: str
    level: int
    children: tuple[OutlineNode, ...]


def outline(doc: Document) -> tuple[OutlineNode, ...]:
    """The section tree with anchors resolved; raises ValueError naming a clashing anchor."""
    seen: dict[str, str] = {}

    def visit(section: Section, prefix: str, level: int) -> OutlineNode:
        anchor = section.anchor or "-".join(filter(None, (prefix, slugify(section.title))))
        if anchor in RESERVED_ANCHORS or anchor in seen:
            other = seen.get(anchor, "the table of contents")
            raise ValueError(f"sections {section.title!r} and {other!r} share anchor "
                             f"{anchor!r}; give one of them another title or an explicit anchor")
        seen[anchor] = section.title
        children = tuple(visit(sub, anchor, level + 1) for sub in section.subsections)
        return OutlineNode(section, anchor, level, children)

    return tuple(visit(section, "", 2) for section in doc.sections)


def rerun_section(
    command: str,
    *,
    version: str,
    commit: str | None,
    torch_version: str,
    device: str,
    stage_configs: Mapping[str, Mapping[str, Any]],
    wall_times: Mapping[str, float],
    title: str = "How to rerun",
    anchor: str = "how-to-rerun",
) -> Section:
    """The "how to rerun" section: the exact command, the environment, the wall time of every
    stage and (one subsection per stage) its resolved configuration as JSON."""
    environment = {
        "vaecam version": version,
        "git commit": commit or "unknown (not a git checkout)",
        "torch version": torch_version,
        "device": device,
    }
    stages = list(dict.fromkeys([*stage_configs, *wall_times]))
    times = Table(
        ["stage", "wall time"],
        [[stage, format_duration(wall_times[stage]) if stage in wall_times else None]
         for stage in stages],
        caption="Wall time per stage",
    )
    configs = [
        Section(f"{stage} configuration", [CodeBlock(
            json.dumps(stage_configs[stage], indent=2, sort_keys=True, default=str), "json")])
        for stage in stage_configs
    ]
    return Section(title, [
        Paragraph("Run from the repository root to produce this report again:"),
        CodeBlock(command, "bash"),
        KeyValues(environment, caption="Environment"),
        times,
    ], configs, anchor)
