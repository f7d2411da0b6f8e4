"""Tables of a localisation run, read from its plain results (the ``results.json`` data).

Every metric cell reads ``mean ± std [lo, hi]``: the mean and population std over training
seeds of the exact value, and the two-level 95% bootstrap interval of the seed mean (seeds, then
test units: images, or whole clips of a video set). Each map has two verdicts per metric on the
same resamples (``better``, ``worse``, ``undecided``): against the ``recon-abs`` baseline and
against the better trivial reference (``mean-diff`` or ``random``, whichever scores higher on
that metric). A map is a *win* only when both are ``better`` (:func:`is_win`). A map that is
degenerate (constant over every image, or the same for every image) on a seed is left out of
that seed's means and its cell says so; degenerate on every seed, the cell reads
``degenerate``. Rows of maps that read the latent (attention, attention-x-recon, grad-kl, combi,
projection) computed on a model whose latent has collapsed carry a warning mark: they are not
evidence about those maps.
The latent-health table names each seed's least-alive encoder layer (``hidden alive``)
beside KL and active units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vaecam.maps.registry import latent_families
from vaecam.metrics.encoder_health import ALIVE_WARNING, is_unhealthy
from vaecam.report.table import Cell, Column, Table

METRIC_NAMES = {"pixel_auroc": "pixel AUROC", "aupro": "AUPRO (FPR<=0.3)",
                "best_iou": "best IoU", "image_auroc_max": "image AUROC (max)"}
METRIC_SHORT = {"pixel_auroc": "pixel AUROC", "aupro": "AUPRO"}
COLLAPSED_MARK = "⚠ collapsed latent"
HIDDEN_ALIVE = "hidden alive (least-alive encoder layer)"
DEGENERATE = "degenerate"
VERDICT_METRICS = ("pixel_auroc", "aupro")


def metric_cell(cell: Mapping[str, Any] | None, style: str = "") -> Cell:
    """``mean ± std [lo, hi]`` (``mean [lo, hi]`` for one seed), ``degenerate (why)`` for a map
    degenerate on every seed, or an en dash; seeds left out as degenerate are named."""
    if not cell:
        return Cell(None, style)
    if DEGENERATE in cell:
        return Cell(f"{DEGENERATE} ({cell[DEGENERATE]})", style)
    several = sum(v is not None for v in cell.get("per_seed", [])) > 1
    left_out = cell.get("degenerate_seeds")
    note = f"{DEGENERATE} on seed {', '.join(map(str, left_out))}, left out" if left_out else ""
    return Cell(cell["mean"], style, std=cell["std"] if several else None,
                interval=tuple(cell["ci95"]), note=note)


def cell_text(cell: Mapping[str, Any] | None, digits: int = 3) -> str:
    """The text of :func:`metric_cell`."""
    return metric_cell(cell).text(digits)


def verdict_text(cell: Mapping[str, Any] | None, against: str = "vs_baseline") -> str:
    """The verdict against the baseline (``against="vs_trivial"``: against the better trivial
    reference), or an en dash (the reference itself)."""
    return (cell or {}).get(against, {}).get("verdict", "–")


def trivial_verdict_text(cell: Mapping[str, Any] | None) -> str:
    """``verdict (vs reference)`` against the better trivial reference, or an en dash."""
    comparison = (cell or {}).get("vs_trivial")
    return f"{comparison['verdict']} (vs {comparison['reference']})" if comparison else "–"


def is_win(setting: Mapping[str, Any], metrics: Sequence[str] = VERDICT_METRICS) -> bool:
    """True when, on every one of ``metrics``, both verdicts (against the baseline and the
    better trivial reference) are ``better``: the only case a table calls a win."""
    cells = setting["metrics"]
    return all(verdict_text(cells.get(m)) == "better" == verdict_text(cells.get(m), "vs_trivial")
               for m in metrics)


def verdict_headers() -> list[str]:
    """The four verdict columns: per verdict metric, against recon-abs and the trivial one."""
    return [f"{name} {METRIC_SHORT[m]}" for m in VERDICT_METRICS
            for name in ("vs recon-abs", "vs trivial")]


def verdict_cells(metrics: Mapping[str, Any]) -> list[str]:
    """The cells under :func:`verdict_headers` for one setting's metrics."""
    return [text for m in VERDICT_METRICS
            for text in (verdict_text(metrics.get(m)), trivial_verdict_text(metrics.get(m)))]


def bootstrap_note(results: Mapping[str, Any]) -> str:
    """How cells and verdicts were made (one paragraph): the interval, its unit and levels, the
    two verdicts and what makes a win."""
    boot = results.get("bootstrap", {})
    unit = boot.get("unit", "image")
    units = f"{boot['n_units']} " if boot.get("n_units") else ""
    references = " or ".join(results.get("trivial_references", ())) or "none"
    return (f"cells: mean ± std over seeds [95% {boot.get('scheme', 'two-level')} bootstrap "
            f"interval: seeds, then the {units}test {unit}s, {results['n_resamples']} "
            f"resamples]; two verdicts, against {results['baseline']} and against the better "
            f"trivial reference ({references}, per metric): {results['verdict_rule']}. A map is "
            "a win only when both verdicts are better.")


def collapsed_mark(setting: Mapping[str, Any], results: Mapping[str, Any]) -> str:
    """`` ⚠ collapsed latent (seed ...)`` after a map of a collapsed model whose score is built
    from the latent (its class's ``reads_latent``)."""
    collapsed = results.get("collapsed_seeds", [])
    if collapsed and setting["family"] in latent_families():
        return f" {COLLAPSED_MARK} (seed {', '.join(map(str, collapsed))})"
    return ""


def best_per_family(results: Mapping[str, Any], metric: str = "pixel_auroc"
                    ) -> list[Mapping[str, Any]]:
    """One setting per map family: the one chosen on training data when the run was tuned,
    else the one with the highest mean ``metric`` on the test images (which favours the families
    with many settings, such as the attention grid: :func:`method_table_note` says so)."""
    if results.get("tuning"):
        picked: dict[str, Mapping[str, Any]] = {}
        for setting in results["settings"]:
            if setting.get("tuned") or setting["family"] not in results["tuning"]["families"]:
                picked.setdefault(setting["family"], setting)
        return list(picked.values())
    best: dict[str, Mapping[str, Any]] = {}
    for setting in results["settings"]:
        value = setting["metrics"].get(metric, {}).get("mean", float("-inf"))
        family = setting["family"]
        current = best.get(family)
        if current is None or value > current["metrics"].get(metric, {}).get("mean",
                                                                            float("-inf")):
            best[family] = setting
    return list(best.values())


def method_table_note(results: Mapping[str, Any]) -> str:
    """Which data each row's options were chosen on (one sentence)."""
    tuning = results.get("tuning")
    if tuning:
        return (f"Each map's options (smoothing, projection steps, the attention layer x method "
                f"x activation) were chosen on {tuning['data']}, by the {tuning['criterion']}; "
                "the test masks were not used. Every setting is in the full table below.")
    return ("Each family's row is its best setting on these test images, which favours the "
            "families with many settings (the attention grid); run with --tune to choose on "
            "training data instead. Every setting is in the full table below.")


def metric_keys(results: Mapping[str, Any]) -> list[str]:
    first = results["settings"][0]["metrics"]
    return [m for m in METRIC_NAMES if m in first]


def method_table(results: Mapping[str, Any]) -> Table:
    """Rows: each map family's best setting; columns: every metric with its interval, the two
    verdicts on pixel AUROC and AUPRO, and milliseconds per image."""
    keys = metric_keys(results)
    columns = ["map", *(METRIC_NAMES[k] for k in keys), *verdict_headers(),
               Column("ms / image", digits=1)]
    rows = []
    for setting in best_per_family(results):
        m = setting["metrics"]
        shown = setting["name"] if setting["family"] == "attention" else setting["label"]
        rows.append([shown + collapsed_mark(setting, results),
                     *(metric_cell(m.get(k)) for k in keys), *verdict_cells(m),
                     float(setting["ms_per_image"])])
    return Table(columns, rows)


def grid_table(results: Mapping[str, Any]) -> Table:
    """Every setting (the whole attention grid included) with every metric and its verdicts."""
    keys = metric_keys(results)
    headers = ["setting", *(f"{METRIC_NAMES[k]}" for k in keys), *verdict_headers()]
    rows = [[s["name"] + collapsed_mark(s, results),
             *(metric_cell(s["metrics"].get(k)) for k in keys), *verdict_cells(s["metrics"])]
            for s in results["settings"]]
    return Table(headers, rows)


def hidden_alive_text(health: Mapping[str, Any]) -> str:
    """``15% (encoder.7, Linear)``: the least-alive encoder layer of a seed's health record
    (``not measured`` for records without encoder health)."""
    if health.get("hidden_alive") is None:
        return "not measured"
    return f"{health['hidden_alive']:.0%} ({health['hidden_layer']}, {health['hidden_kind']})"


def dead_layer_seeds(results: Mapping[str, Any]) -> list[str]:
    """Seeds whose least-alive encoder layer has under 20% of its units alive."""
    return [seed for seed, health in results.get("latent", {}).items()
            if is_unhealthy(health)[0]]


def latent_table(results: Mapping[str, Any]) -> Table:
    """Per seed: KL, active units, the least-alive encoder layer and the spread of ``mu`` on the
    test images."""
    rows = []
    for seed, health in results["latent"].items():
        rows.append([seed, f"{health['kl']:.3g}", f"{health['active_units']} of "
                     f"{health['latent_dim']}", hidden_alive_text(health),
                     f"{health['mu_std']:.2g}", "yes" if health["collapsed"] else "no"])
    return Table(["seed", "KL (nats)", "active units", HIDDEN_ALIVE,
                  "std of mu (mean over dims)", "collapsed"], rows)


def collapse_warning(results: Mapping[str, Any]) -> str:
    """One line when some seed's latent has collapsed or an encoder layer is dead (else an
    empty string)."""
    collapsed = results.get("collapsed_seeds", [])
    dead = dead_layer_seeds(results)
    parts = []
    if collapsed:
        parts.append(f"the latent of seed(s) {', '.join(map(str, collapsed))} has collapsed "
                     "(0 active units): mu does not depend on the input, so the rows of maps "
                     f"that read the latent, marked '{COLLAPSED_MARK}', are not evidence about "
                     "those maps")
    if dead:
        layers = "; ".join(f"seed {seed}: {hidden_alive_text(results['latent'][seed])}"
                           for seed in dead)
        parts.append(f"an encoder layer is under {ALIVE_WARNING:.0%} alive ({layers}), so "
                     "most of its units pass nothing to the latent")
    return f"WARNING: {'. Also, '.join(parts)}." if parts else ""


def values_by(results: Mapping[str, Any], names: Sequence[str], metric: str) -> list[Cell]:
    """:func:`metric_cell` of ``metric`` for the settings called ``names`` (en dash if absent)."""
    by_name = {s["name"]: s for s in results["settings"]}
    return [metric_cell(by_name[n]["metrics"].get(metric) if n in by_name else None)
            for n in names]


def table_markdown(results: Mapping[str, Any], title: str,
                   extra: Sequence[str | Table] = ()) -> str:
    """``table.md`` of a localisation run: the note, how cells were made, a warning when a
    latent collapsed, latent health, the method table, ``extra`` (headings, text, tables) and
    every setting."""
    warning = collapse_warning(results)
    return "\n".join(map(str, [
        f"# {title}\n", results.get("note", ""), "",
        f"Seeds {', '.join(map(str, results['seeds']))}; {bootstrap_note(results)}\n",
        *([f"**{warning}**\n"] if warning else []),
        "## Latent health of the explained models\n", latent_table(results),
        "## Map methods\n", method_table_note(results) + "\n", method_table(results),
        *extra,
        "## Every setting\n", grid_table(results),
    ]))
