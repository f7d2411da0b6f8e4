"""Report document model and its Markdown / HTML renderers (the browser test is separate)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imsave

from vaecam.errors import DataError
from vaecam.report.document import (
    CodeBlock,
    Document,
    Figure,
    Note,
    Paragraph,
    Section,
    Verdict,
    format_duration,
    interval,
    mean_std,
    outline,
    rerun_section,
    slugify,
)
from vaecam.report.render import (
    image_data_uri,
    render_html,
    render_markdown,
    write_report,
)
from vaecam.report.table import Cell, Table


def _png(path: Path) -> Path:
    """A real 6 x 8 PNG written by matplotlib."""
    path.parent.mkdir(parents=True, exist_ok=True)
    imsave(path, np.linspace(0, 1, 48).reshape(6, 8), cmap="gray")
    return path


def _doc(*sections: Section) -> Document:
    return Document("Report", sections=list(sections))


def test_slugify():
    assert slugify("MVTec-AD: carpet") == "mvtec-ad-carpet"
    assert slugify("  Ped1 — pixel AUROC (conv2) ") == "ped1-pixel-auroc-conv2"
    assert slugify("Café déjà vu") == "cafe-deja-vu"
    assert slugify("±") == "section"


def test_anchors_follow_the_parents_and_do_not_depend_on_other_sections():
    carpet = Section("carpet")
    mvtec = Section("MVTec-AD", subsections=[carpet, Section("ROC curves")])
    before = {n.section.title: n.anchor for n in outline(_doc(mvtec))[0].children}
    nodes = outline(_doc(Section("MNIST"), mvtec, Section("Rerun", anchor="how-to-rerun",
                                                          subsections=[Section("ROC curves")])))
    assert [n.anchor for n in nodes] == ["mnist", "mvtec-ad", "how-to-rerun"]
    assert {n.section.title: n.anchor for n in nodes[1].children} == before == {
        "carpet": "mvtec-ad-carpet", "ROC curves": "mvtec-ad-roc-curves"}
    assert nodes[2].children[0].anchor == "how-to-rerun-roc-curves"
    assert [nodes[0].level, nodes[1].children[0].level] == [2, 3]


def test_clashing_anchors_are_rejected():
    with pytest.raises(ValueError, match="'mnist'"):
        outline(_doc(Section("MNIST"), Section("mnist")))
    with pytest.raises(ValueError, match="'contents'"):
        outline(_doc(Section("Contents")))
    with pytest.raises(ValueError, match="lower-case"):
        Section("x", anchor="Not A Slug")


def test_markdown_table_lines(tmp_path):
    table = Table(["setting", "paper", "vaecam"],
                  [["a|b", 0.9, Cell(0.51234, "strong")], ["conv1", None, float("nan")]],
                  caption="Pixel AUROC", digits=2)
    text = render_markdown(_doc(Section("UCSD", [table])), tmp_path)
    expected = ("*Pixel AUROC*\n\n| setting | paper | vaecam |\n|---|---|---|\n"
                "| a\\|b | 0.90 | **0.51** |\n| conv1 | – | – |\n")
    assert expected in text


def test_markdown_anchors_and_table_of_contents(tmp_path):
    doc = _doc(Section("MNIST", [Paragraph("x")], [Section("Trained on 1")]), Section("dSprites"))
    text = render_markdown(doc, tmp_path)
    assert '<a id="mnist"></a>\n\n## MNIST\n\nx\n\n<a id="mnist-trained-on-1"></a>\n\n' \
           "### Trained on 1\n" in text
    assert ("## Contents\n\n- [MNIST](#mnist)\n  - [Trained on 1](#mnist-trained-on-1)\n"
            "- [dSprites](#dsprites)\n") in text
    assert "\n\n\n" not in text


def test_markdown_links_figures_relative_to_the_report_folder(tmp_path):
    out = tmp_path / "report"
    inside = _png(out / "figures" / "roc curve.png")
    outside = _png(tmp_path / "runs" / "overlay.png")
    doc = _doc(Section("Figures", [Figure(inside, "ROC"), Figure(outside, "Overlay", alt="maps"),
                                   Figure(Path("figures/roc curve.png"), "relative")]))
    text = render_markdown(doc, out)
    assert "![ROC](figures/roc%20curve.png)\n\n*ROC*" in text
    assert "![maps](../runs/overlay.png)\n\n*Overlay*" in text
    assert "![relative](figures/roc%20curve.png)" in text


def test_markdown_keeps_text_literal_and_code_verbatim(tmp_path):
    code = "a = ```x```\n\n\n  indented <b>"
    doc = _doc(Section("S", [Paragraph("*not bold* <b>raw</b> [link](x) _under_ metal_nut"),
                             CodeBlock(code, "python"), Note("latent collapsed", "warning"),
                             Verdict("Claim 1", "not reproduced", "0.50 vs 0.92")]))
    text = render_markdown(doc, tmp_path)
    assert ("\\*not bold\\* &lt;b&gt;raw&lt;/b&gt; \\[link\\](x) \\_under\\_ metal_nut"
            in text)
    assert f"````python\n{code}\n````" in text
    assert "> **Warning:** latent collapsed" in text
    assert "- **not reproduced**: Claim 1 (0.50 vs 0.92)" in text


def test_html_escapes_text(tmp_path):
    hostile = "<script>alert(1)</script>"
    doc = Document(f"T {hostile}", intro=[Paragraph(hostile)],
                   sections=[Section(hostile, [Table(["h"], [[hostile]]),
                                               CodeBlock(hostile), Verdict(hostile, "x", "y")])],
                   metadata={hostile: hostile})
    html = render_html(doc, tmp_path)
    assert "<script" not in html
    # <title>, h1, metadata key and value, intro, h2, contents link, cell, code, claim
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 10
    assert '<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>' in html


def test_html_embeds_every_image_and_links_nothing_outside(tmp_path):
    first, second = _png(tmp_path / "a.png"), _png(tmp_path / "sub" / "b.png")
    second.write_bytes(second.read_bytes() + b"different")
    doc = _doc(Section("S", [Figure(first, "A"), Figure(Path("sub/b.png"), "B")]))
    html = render_html(doc, tmp_path)
    sources = re.findall(r'<img src="([^"]*)"', html)
    assert [base64.b64decode(s.removeprefix("data:image/png;base64,")) for s in sources] == [
        first.read_bytes(), second.read_bytes()]
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    for pattern in ('src="file', "http://", "https://", "<link", "<script", "url("):
        assert pattern not in html


def test_html_heading_levels_stop_at_h6(tmp_path):
    deep = Section("d5")
    for title in ("d4", "d3", "d2", "d1"):
        deep = Section(title, subsections=[deep])
    html = render_html(_doc(deep), tmp_path)
    assert [re.search(rf"<(h\d)>{t}</h\d>", html).group(1) for t in
            ("d1", "d2", "d3", "d4", "d5")] == ["h2", "h3", "h4", "h5", "h6"]


def test_missing_figure_is_an_error_naming_the_file(tmp_path):
    doc = _doc(Section("S", [Figure(Path("figures/absent.png"), "ROC")]))
    out = tmp_path / "out"
    for render in (lambda: render_html(doc, out), lambda: render_markdown(doc, out),
                   lambda: write_report(doc, out, {"a": 1})):
        with pytest.raises(DataError, match=re.escape(str(out / "figures" / "absent.png"))):
            render()
    assert not out.exists()


def test_image_data_uri_checks_the_content(tmp_path):
    fake = tmp_path / "fake.png"
    fake.write_text("not a png")
    with pytest.raises(DataError, match="fake.png"):
        image_data_uri(fake)
    bmp = tmp_path / "x.bmp"
    bmp.write_bytes(b"BM")
    with pytest.raises(DataError, match="x.bmp"):
        image_data_uri(bmp)
    svg = tmp_path / "x.svg"
    svg.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert image_data_uri(svg).startswith("data:image/svg+xml;base64,")


def test_write_report_writes_the_three_files(tmp_path):
    _png(tmp_path / "figures" / "roc.png")
    doc = _doc(Section("S", [Figure(Path("figures/roc.png"), "ROC")]))
    data = {"mnist": {"auroc": 0.912}, "claims": ["a", "b"]}
    files = write_report(doc, tmp_path, data)
    assert json.loads(files.results.read_text()) == data
    assert files.markdown.read_text() == render_markdown(doc, tmp_path)
    assert files.html.read_text() == render_html(doc, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "figures", "report.html", "report.md", "results.json"]


def test_blocks_validate_their_input():
    assert Verdict("c", "Not reproduced", "e").resolved_tone == "bad"
    assert Verdict("c", "reproduced", "e").resolved_tone == "good"
    assert Verdict("c", "inconclusive", "e").resolved_tone == "neutral"
    assert Verdict("c", "inconclusive", "e", tone="mixed").resolved_tone == "mixed"
    with pytest.raises(ValueError, match="one line"):
        Verdict("c", "reproduced", "0.9\n0.8")
    with pytest.raises(ValueError, match="row 1 has 1 cells for 2 headers"):
        Table(["a", "b"], [[1, 2], [3]])
    with pytest.raises(ValueError, match="style"):
        Cell(1, "red")
    with pytest.raises(ValueError, match="level"):
        Note("x", "error")


def test_number_formats():
    assert mean_std(0.81234, 0.0214) == "0.812 ± 0.021"
    assert mean_std(0.81234, None) == mean_std(0.81234, float("nan")) == "0.812"
    assert mean_std(None, 0.1) == "–"
    assert interval(0.78, 0.8449, digits=2) == "[0.78, 0.84]"
    assert [format_duration(s) for s in (42.04, 185, 3723.4)] == [
        "42.0 s", "3 min 05 s", "1 h 02 min 03 s"]


def test_rerun_section_shows_command_environment_times_and_configs(tmp_path):
    section = rerun_section(
        "vaecam reproduce --out out", version="0.2.0", commit=None, torch_version="2.14.1",
        device="cuda (NVIDIA H200)", stage_configs={"mnist": {"lr": 0.001, "digit": 1}},
        wall_times={"mnist": 65.0, "dsprites": 12.5})
    text = render_markdown(_doc(section), tmp_path)
    assert "```bash\nvaecam reproduce --out out\n```" in text
    assert "- **git commit**: unknown (not a git checkout)" in text
    assert "- **device**: cuda (NVIDIA H200)" in text
    assert "| mnist | 1 min 05 s |\n| dsprites | 12.5 s |" in text
    assert '### mnist configuration\n\n```json\n{\n  "digit": 1,\n  "lr": 0.001\n}\n```' in text
