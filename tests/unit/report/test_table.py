"""The one table model: Markdown (literal and as written), HTML, JSON, and table.md of a run."""

from __future__ import annotations

import json

import pytest

from vaecam.experiments.localization import results as run_results
from vaecam.report.localization import grid_table, latent_table, method_table, metric_cell
from vaecam.report.table import Cell, Column, Table


def _plain_markdown(headers, rows) -> str:
    """The obvious Markdown table of already formatted text cells."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _table() -> Table:
    return Table(
        ["setting", Column("paper", note="Liu et al., Table 2"), Column("vaecam", digits=3),
         Column("ms", align="right", digits=1)],
        [["a_b <x>", 0.9, Cell(0.51234, "good", std=0.0214, interval=(0.49, 0.53),
                               note="seed 1 left out"), 12.34],
         ["conv1", None, Cell(float("nan"), "strong"), 2],
         ["conv2", float("nan"), Cell(0.7, "bad"), Cell("–", "muted")]],
        caption="Pixel AUROC [95%]", digits=2)


def test_cells_read_value_std_interval_and_note():
    cell = Cell(0.51234, std=0.0214, interval=(0.49, 0.53), note="seed 1 left out")
    assert cell.text() == "0.512 ± 0.021 [0.490, 0.530] (seed 1 left out)"
    assert cell.text(2) == "0.51 ± 0.02 [0.49, 0.53] (seed 1 left out)"
    assert Cell(None).text() == Cell(float("nan")).text() == "–"
    assert Cell(3).text() == "3" and Cell(True).text() == "True"
    assert Cell(0.5).numeric and not Cell(0.5, interval=(0.4, 0.6)).numeric
    assert not Cell(True).numeric and not Cell("0.5").numeric
    assert not Cell(float("nan")).numeric and not Cell(None).numeric
    with pytest.raises(ValueError, match="style"):
        Cell(1, "red")
    with pytest.raises(ValueError, match="pair"):
        Cell(1, interval=(1, 2, 3))
    with pytest.raises(ValueError, match="alignment"):
        Column("x", align="middle")


def test_markdown_as_written_equals_the_obvious_table():
    table = _table()
    expected = _plain_markdown(
        ["setting", "paper", "vaecam", "ms"],
        [["a_b <x>", "0.90", "0.512 ± 0.021 [0.490, 0.530] (seed 1 left out)", "12.3"],
         ["conv1", "–", "**–**", "2"],
         ["conv2", "–", "0.700", "–"]])
    rule = "|---|---|---|---:|\n"
    assert str(table) == table.to_markdown(escape=False) == (
        "*Pixel AUROC [95%]*\n\n" + expected.replace("|---|---|---|---|\n", rule))


def test_markdown_for_a_report_keeps_text_literal():
    table = Table(["a|b", "x_"], [["*not bold* [link](u)", Cell("y", "strong")]],
                  caption="<b>caption</b>")
    assert table.to_markdown() == ("*&lt;b&gt;caption&lt;/b&gt;*\n\n| a\\|b | x\\_ |\n|---|---|\n"
                                   "| \\*not bold\\* \\[link\\](u) | **y** |\n")
    assert str(Table(["h"], [["a|b"]])) == "| h |\n|---|\n| a\\|b |\n"


def test_html_escapes_every_text_and_marks_numbers_styles_and_intervals():
    hostile = '<script>alert("x")</script>'
    table = Table([Column(hostile, note=hostile), "n"],
                  [[hostile, 0.5], [Cell(0.5, "good", interval=(0.4, 0.6)), Cell(2, "bad")]],
                  caption=hostile)
    html = str(table.to_html())
    assert "<script" not in html
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    # caption, aria-label, header, its tooltip, cell
    assert html.count(escaped) == 5
    assert f'<th scope="col" title="{escaped}">{escaped}</th>' in html
    assert '<td class="num">0.500</td>' in html
    assert '<td class="good">0.500 <span class="interval">[0.400, 0.600]</span></td>' in html
    assert '<td class="num bad">2</td>' in html
    assert html.startswith(f'<p class="block-caption table-caption">{escaped}</p>\n'
                           f'<div class="table-scroll" role="region" tabindex="0" '
                           f'aria-label="{escaped}">\n<table>\n')
    assert html.endswith("</tbody>\n</table>\n</div>")
    assert 'aria-label="table"' in str(Table(["a"], [[1]]).to_html())


def test_json_round_trip_keeps_every_cell_and_renders_the_same():
    table = Table(_table().columns, [*_table().rows[:1], ["conv1", None, Cell(None, "bad"), 2]],
                  caption="c", digits=2)
    data = json.loads(json.dumps(table.to_json(), allow_nan=False))
    assert data["rows"][0][2] == {"value": 0.51234, "style": "good", "std": 0.0214,
                                  "interval": [0.49, 0.53], "note": "seed 1 left out"}
    assert data["columns"][3] == {"header": "ms", "align": "right", "note": "", "digits": 1}
    again = Table.from_json(data)
    assert again == table
    assert again.to_markdown() == table.to_markdown()
    assert again.to_html() == table.to_html()
    with_nan = _table()  # NaN is written as null: it reads the same, an en dash
    data = json.loads(json.dumps(with_nan.to_json(), allow_nan=False))
    assert data["rows"][2][1] is None and data["rows"][1][2] == {"value": None, "style": "strong"}
    assert Table.from_json(data).to_html() == with_nan.to_html()


def test_rows_must_fit_the_columns():
    with pytest.raises(ValueError, match="row 1 has 1 cells for 2 headers"):
        Table(["a", "b"], [[1, 2], [3]])


def test_map_text_changes_every_text_and_keeps_numbers():
    table = _table().map_text(str.upper)
    assert table.headers == ["SETTING", "PAPER", "VAECAM", "MS"]
    assert table.columns[1].note == "LIU ET AL., TABLE 2"
    assert table.rows[0][:2] == ("A_B <X>", 0.9)
    assert table.rows[0][2].note == "SEED 1 LEFT OUT" and table.caption == "PIXEL AUROC [95%]"


def _metric(mean, verdict="better"):
    return {"mean": mean, "std": 0.01, "per_seed": [mean - 0.01, mean + 0.01],
            "ci95": [mean - 0.02, mean + 0.02], "vs_baseline": {"verdict": verdict},
            "vs_trivial": {"verdict": verdict, "reference": "mean-diff"}}


def _results() -> dict:
    def setting(name, family, auroc, **extra):
        return {"name": name, "label": name.split(" ")[0], "family": family,
                "ms_per_image": 1.26, "metrics": {"pixel_auroc": _metric(auroc),
                                                  "aupro": _metric(auroc - 0.1), **extra}}

    degenerate = {"degenerate": "constant over every image"}
    return {"note": "Data: synthetic.", "seeds": [0, 1], "n_resamples": 100,
            "verdict_rule": "every resample agrees", "baseline": "recon-abs",
            "trivial_references": ["mean-diff", "random"],
            "bootstrap": {"unit": "image", "n_units": 10, "scheme": "two-level"},
            "latent": {"0": {"kl": 12.3456, "active_units": 3, "latent_dim": 4,
                             "mu_std": 0.1234, "collapsed": False}},
            "collapsed_seeds": [],
            "settings": [setting("recon-abs", "recon-abs", 0.7),
                         setting("attention conv1 m1 relu", "attention", 0.9),
                         {**setting("grad-kl s=4", "grad-kl", 0.6),
                          "metrics": {"pixel_auroc": degenerate, "aupro": degenerate}}]}


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table in ``text`` as rows of stripped cells (rule rows dropped)."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            if not set(line) <= set("|-:"):
                current.append([c.strip() for c in line.strip().strip("|").split(" | ")])
        elif current:
            tables.append(current)
            current = []
    return tables


def test_localize_table_md_is_the_rendering_of_its_tables(tmp_path, monkeypatch):
    results = _results()
    monkeypatch.setattr(run_results, "write_figures", lambda *args: [])
    extra = Table(["category", Column("vaecam", digits=3)], [["synthetic",
                  metric_cell(results["settings"][1]["metrics"]["pixel_auroc"])]], digits=2)
    written = run_results.write_outputs(tmp_path, None, results, "Localisation",
                                        ["## Extra\n", extra])
    text = (tmp_path / "table.md").read_text()
    assert text == written["table_md"]
    tables = [latent_table(results), method_table(results), extra, grid_table(results)]
    for table in tables:
        assert str(table) in text
    assert markdown_tables(text) == [[t.headers, *([c.text for c in row] for row in t.body())]
                                     for t in tables]
    method = markdown_tables(text)[1]
    assert method[2] == ["attention conv1 m1 relu", "0.900 ± 0.010 [0.880, 0.920]",
                         "0.800 ± 0.010 [0.780, 0.820]", "better", "better (vs mean-diff)",
                         "better", "better (vs mean-diff)", "1.3"]
    assert method[3][1] == "degenerate (constant over every image)"
    assert markdown_tables(text)[0][1][1:3] == ["12.3", "3 of 4"]
    assert text.startswith("# Localisation\n\nData: synthetic.\n\nSeeds 0, 1; cells: mean ± std")
    assert json.loads((tmp_path / "results.json").read_text())["table_md"] == text
