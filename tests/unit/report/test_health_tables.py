"""The latent-health table and warning of localisation results, with the encoder's health."""

from __future__ import annotations

from vaecam.report.localization import HIDDEN_ALIVE, collapse_warning, latent_table
from vaecam.report.table import Cell
from vaecam.reproduce.report import latent_table as report_latent_table


def _health(kl: float, units: int, alive: float | None, layer: str = "encoder.7") -> dict:
    record = {"kl": kl, "active_units": units, "latent_dim": 32, "mu_std": 0.1,
              "collapsed": units == 0}
    if alive is not None:
        record.update(hidden_alive=alive, hidden_layer=layer, hidden_kind="Linear")
    return record


def _results(latent: dict) -> dict:
    return {"latent": latent, "collapsed_seeds": [int(s) for s, h in latent.items()
                                                  if h["collapsed"]]}


def test_latent_table_shows_the_least_alive_layer_per_seed():
    results = _results({"0": _health(12.0, 9, 0.62), "1": _health(0.05, 0, 0.15),
                        "2": _health(3.0, 4, None)})  # a record written before encoder health
    lines = str(latent_table(results)).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:4] == ["seed", "KL (nats)", "active units", HIDDEN_ALIVE]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in lines[2:]}
    assert rows["0"][1:4] == ["12", "9 of 32", "62% (encoder.7, Linear)"]
    assert rows["1"][3] == "15% (encoder.7, Linear)" and rows["1"][-1] == "yes"
    assert rows["2"][3] == "not measured"


def test_one_warning_line_names_collapse_and_dead_layers():
    assert collapse_warning(_results({"0": _health(12.0, 9, 0.62)})) == ""
    dead_only = collapse_warning(_results({"0": _health(12.0, 9, 0.62),
                                           "1": _health(8.0, 3, 0.1, "encoder.4")}))
    assert "\n" not in dead_only and "collapsed" not in dead_only
    assert "seed 1: 10% (encoder.4, Linear)" in dead_only and "seed 0" not in dead_only
    both = collapse_warning(_results({"0": _health(0.05, 0, 0.15)}))
    assert both.startswith("WARNING: the latent of seed(s) 0 has collapsed")
    assert "seed 0: 15% (encoder.7, Linear)" in both and "\n" not in both


def test_report_table_marks_a_dead_layer():
    table = report_latent_table(_results({"0": _health(12.0, 9, 0.62),
                                          "1": _health(0.05, 0, 0.15)}))
    assert table.headers[3] == HIDDEN_ALIVE
    assert table.rows[0][3] == "62% (encoder.7, Linear)"
    assert table.rows[1][3] == Cell("15% (encoder.7, Linear)", "bad")
