"""report.html in a real browser: headless Chromium (Debian's) driven by Playwright.

Everything is checked on the rendered page, not in the HTML source: headings, tables, loaded
images, console errors, outside requests, the layout at a phone width, and a full-page
screenshot. Without /usr/bin/chromium the tests skip (``make browser`` installs it); with
VAECAM_REQUIRE_BROWSER=1 they fail instead.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vaecam.report.document import (
    Document,
    Figure,
    Note,
    OutlineNode,
    Paragraph,
    Section,
    Verdict,
    mean_std,
    outline,
    rerun_section,
)
from vaecam.report.render import write_report
from vaecam.report.table import Cell, Table
from vaecam.viz.figures import subplots

pytestmark = pytest.mark.timeout(180)

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def _plot(path: Path, kind: str) -> Path:
    """A tiny real matplotlib figure (120 x 80 px)."""
    fig, ax = subplots(figsize=(2.4, 1.6))
    if kind == "roc":
        ax.plot([0, 0.1, 0.4, 1], [0, 0.6, 0.9, 1])
        ax.plot([0, 1], [0, 1], ls="--", color="gray")
    else:
        ax.imshow([[0.0, 0.5, 1.0], [1.0, 0.2, 0.0]], cmap="jet")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=50)
    return path


def _sample_document(out: Path) -> Document:
    roc = _plot(out / "figures" / "roc.png", "roc")
    overlay = _plot(out / "figures" / "overlay.png", "overlay")
    categories = ["carpet", "grid", "leather", "tile", "wood", "bottle", "cable", "capsule",
                  "hazelnut", "metal_nut", "pill", "screw", "toothbrush", "transistor"]
    wide = Table(["setting", *[f"{c} AUROC" for c in categories]],
                 [["paper", *[0.8] * 14], ["reproduction", *[0.5] * 14],
                  ["vaecam", *[Cell(mean_std(0.55, 0.02), "bad")] * 14]],
                 caption="MVTec-AD pixel AUROC, every category")
    return Document(
        title="vaecam reproduction: sample report",
        intro=[Paragraph("A sample report with every kind of block."),
               Note("Latent dimensions 3 and 7 collapsed (KL < 0.01).", level="warning")],
        sections=[
            Section("Verdicts", [
                Verdict("Method 1 localises anomalies", "not reproduced",
                        "pixel AUROC 0.501 vs paper 0.92 (reproduction 0.80)"),
                Verdict("AD loss improves disentanglement", "partly reproduced",
                        "FactorVAE score 0.745 vs 0.600 (2 seeds)"),
            ]),
            Section("MNIST", [
                Table(["method", "paper", "reproduction", "vaecam"],
                      [["method 1", None, None, Cell(mean_std(0.912, 0.011), "good")],
                       [HOSTILE, 0.86, 0.82, Cell("0.985", "strong")]],
                      caption="Pixel AUROC on pasted strokes"),
                Figure(overlay, "Attention overlays, trained on digit 1", alt="overlay grid"),
            ]),
            Section("MVTec-AD", [Paragraph("Fourteen categories, one model each.")], [
                Section("All categories", [wide]),
                Section("screw", [Figure(roc, "Pixel ROC curves, screw")]),
            ]),
            rerun_section(
                "vaecam reproduce --out outputs/reproduce --preset cpu --mvtec-root "
                "../shared/data/mvtec --ucsd-root ../shared/data/ucsd --dsprites-steps 8000",
                version="0.2.0", commit="3ab6892", torch_version="2.14.1", device="cpu",
                stage_configs={"mnist": {"lr": 0.001, "latent_dim": 32},
                               "dsprites": {"gamma": 40, "steps": 8000}},
                wall_times={"mnist": 106.0, "dsprites": 3605.0}),
        ],
        metadata={"vaecam version": "0.2.0", "git commit": "3ab6892"},
    )


def _tables(doc: Document) -> list[Table]:
    found: list[Table] = []

    def visit(section: Section) -> None:
        found.extend(b for b in section.blocks if isinstance(b, Table))
        for sub in section.subsections:
            visit(sub)

    for section in doc.sections:
        visit(section)
    return found


def _flatten(nodes: tuple[OutlineNode, ...]) -> list[OutlineNode]:
    return [n for node in nodes for n in (node, *_flatten(node.children))]


@dataclass
class LoadedPage:
    """A page opened on report.html and what it logged while loading."""

    page: object
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Document, Path]:
    out = tmp_path_factory.mktemp("report")
    doc = _sample_document(out)
    return doc, write_report(doc, out, {"sample": True}).html


def _open(browser, html: Path, viewport: dict[str, int], mobile: bool) -> LoadedPage:
    """A page in its own context; ``mobile`` honours the viewport meta tag, as phones do."""
    context = browser.new_context(viewport=viewport, device_scale_factor=1, is_mobile=mobile,
                                  has_touch=mobile)
    context.set_default_timeout(20_000)
    page = context.new_page()
    loaded = LoadedPage(page)
    page.on("console", lambda m: loaded.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: loaded.errors.append(str(e)))
    page.on("request", lambda r: loaded.requests.append(r.url))
    page.goto(html.as_uri(), wait_until="load")
    return loaded


@pytest.fixture(scope="module")
def laptop(browser, report) -> LoadedPage:
    return _open(browser, report[1], LAPTOP, mobile=False)


@pytest.fixture(scope="module")
def phone(browser, report) -> LoadedPage:
    return _open(browser, report[1], PHONE, mobile=True)


def test_every_section_heading_is_rendered_with_its_anchor(laptop, report):
    doc, _ = report
    nodes = _flatten(outline(doc))
    rendered = laptop.page.evaluate("""() => [...document.querySelectorAll('main section')]
        .map(s => [s.id, s.querySelector(':scope > :is(h2, h3, h4, h5, h6)').innerText,
                   s.querySelector(':scope > :is(h2, h3, h4, h5, h6)').tagName])""")
    assert rendered == [[n.anchor, n.section.title, f"H{n.level}"] for n in nodes]
    assert laptop.page.locator("h1").inner_text() == doc.title
    toc = laptop.page.evaluate("""() => [...document.querySelectorAll('nav.toc a')]
        .map(a => [a.getAttribute('href'), a.innerText,
                   document.getElementById(a.getAttribute('href').slice(1)) !== null])""")
    assert toc == [[f"#{n.anchor}", n.section.title, True] for n in nodes]


def test_every_table_shows_its_headers_and_cells(laptop, report):
    doc, _ = report
    expected = [[list(t.headers), *[[c.text for c in row] for row in t.body()]]
                for t in _tables(doc)]
    rendered = laptop.page.evaluate("""() => [...document.querySelectorAll('table')]
        .map(t => [...t.rows].map(r => [...r.cells].map(c => c.innerText)))""")
    assert len(rendered) == len(expected) == 3
    assert rendered == expected
    captions = laptop.page.locator(".table-caption").all_inner_texts()
    assert captions == [t.caption for t in _tables(doc)]


def test_text_is_escaped_not_executed(laptop):
    page = laptop.page
    assert page.locator("td", has_text="<script>window.pwned = 1</script>").count() == 1
    assert page.evaluate("() => window.pwned === undefined")
    assert page.evaluate("() => document.scripts.length") == 0


def test_every_image_is_embedded_and_loaded(laptop, report):
    doc, html = report
    images = laptop.page.evaluate("""() => [...document.images].map(i =>
        [i.complete && i.naturalWidth > 0, i.naturalWidth, i.naturalHeight, i.alt,
         i.src.slice(0, 22)])""")
    figures = html.parent / "figures"
    sizes = [_png_size(figures / "overlay.png"), _png_size(figures / "roc.png")]
    assert images == [[True, w, h, alt, "data:image/png;base64,"]
                      for (w, h), alt in zip(sizes, ["overlay grid", "Pixel ROC curves, screw"],
                                             strict=True)]


def test_page_loads_nothing_else_and_logs_no_error(laptop, phone, report):
    _, html = report
    for loaded in (laptop, phone):
        assert loaded.errors == []
        outside = [u for u in loaded.requests if u != html.as_uri() and not u.startswith("data:")]
        assert outside == []


def test_phone_width_has_no_horizontal_page_scroll_and_tables_scroll_inside(phone):
    page = phone.page
    width = PHONE["width"]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width + 1
    boxes = page.evaluate("""() => [...document.querySelectorAll('.table-scroll, pre, img')]
        .map(e => e.getBoundingClientRect().right)""")
    assert boxes and max(boxes) <= width + 1
    wide = page.locator(".table-scroll").nth(1)  # the 15-column MVTec-AD table
    overflow = wide.evaluate("""e => {
        e.scrollLeft = 200;
        return [getComputedStyle(e).overflowX, e.scrollWidth > e.clientWidth, e.scrollLeft];
    }""")
    assert overflow == ["auto", True, 200]


def test_laptop_width_fits_and_full_page_screenshots_are_written(laptop, phone, tmp_path):
    assert laptop.page.evaluate("() => document.documentElement.scrollWidth") <= LAPTOP["width"] + 1
    for name, loaded, viewport in (("laptop", laptop, LAPTOP), ("phone", phone, PHONE)):
        shot = tmp_path / f"report-{name}.png"
        loaded.page.screenshot(path=str(shot), full_page=True)
        width, height = _png_size(shot)
        page_height = loaded.page.evaluate("() => document.documentElement.scrollHeight")
        assert shot.stat().st_size > 1000
        assert (width, height) == (viewport["width"], page_height)


# --- the committed reports: no page overflow at a laptop's or a phone's width --------------------

REPO = Path(__file__).resolve().parents[2]
COMMITTED = sorted((REPO / "docs" / "report").rglob("report.html"))


def review_dir() -> Path:
    """Where screenshots are copied for a person to look at: $VAECAM_SCREENSHOT_DIR, else
    ``vaecam-report-screenshots`` in the system's temporary folder."""
    import os
    import tempfile

    folder = Path(os.environ.get("VAECAM_SCREENSHOT_DIR")
                  or Path(tempfile.gettempdir()) / "vaecam-report-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("html", COMMITTED, ids=[p.parent.name for p in COMMITTED])
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1280px", "390px"])
def test_committed_report_never_overflows_the_window_and_is_screenshot(browser, html, viewport,
                                                                       tmp_path):
    import shutil

    loaded = _open(browser, html, viewport, mobile=viewport is PHONE)
    page = loaded.page
    width = page.evaluate("() => document.documentElement.scrollWidth")
    sticking_out = page.evaluate("""() => [...document.querySelectorAll('main *')]
        .filter(e => !e.closest('.table-scroll, pre'))
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .map(e => e.tagName + ': ' + (e.innerText || '').slice(0, 60))""")
    name = f"{html.parent.name}-{viewport['width']}px.png"
    shot = tmp_path / name
    # a full-page shot of a long report with embedded figures: slow on a loaded machine
    page.screenshot(path=str(shot), full_page=True, timeout=120_000)
    copy = review_dir() / name
    shutil.copyfile(shot, copy)
    print(f"screenshot for review: {copy}")
    page.context.close()
    assert loaded.errors == []
    assert width <= viewport["width"], f"page is {width} px wide: {sticking_out[:5]}"
    assert sticking_out == []
    assert _png_size(shot)[0] == viewport["width"]
