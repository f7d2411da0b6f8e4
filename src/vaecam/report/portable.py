"""A report's document with every path it prints made portable (see
:mod:`vaecam.outputs.portable` for the rule)."""

from __future__ import annotations

from dataclasses import fields, replace

from vaecam.outputs.portable import PortablePaths
from vaecam.report.document import Block, Document, KeyValues, Section
from vaecam.report.table import Table


def portable_document(doc: Document, paths: PortablePaths) -> Document:
    """A copy of ``doc`` whose every text (titles, cells, captions, code, metadata) has its
    paths rewritten; figure files keep their real paths (the renderers need them)."""

    def block(item: Block) -> Block:
        if isinstance(item, Table):
            return item.map_text(paths.text)
        if isinstance(item, KeyValues):
            return replace(item, items=paths(dict(item.items)), caption=paths.text(item.caption))
        changed = {f.name: paths.text(getattr(item, f.name)) for f in fields(item)
                   if isinstance(getattr(item, f.name), str)}
        return replace(item, **changed)

    def section(part: Section) -> Section:
        return Section(paths.text(part.title), [block(b) for b in part.blocks],
                       [section(s) for s in part.subsections], part.anchor)

    return Document(paths.text(doc.title), [block(b) for b in doc.intro],
                    [section(s) for s in doc.sections], paths(dict(doc.metadata)))
