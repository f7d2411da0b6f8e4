"""What a localisation run writes: ``results.json`` (every number, the switches and the
data), ``table.md`` and the figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from vaecam.experiments.localization.aggregation import Aggregate
from vaecam.experiments.localization.config import BASELINE, LocalizationConfig
from vaecam.maps.registry import map_class
from vaecam.report.table import Table


def results_json(agg: Aggregate, cfg: LocalizationConfig, record: Mapping[str, Any]
                 ) -> dict[str, Any]:
    """The plain results of a run: every setting's cells, costs and switches, latent health
    per seed, and ``record`` (data, model, checkpoints, references)."""
    cells = agg.cells
    first = agg.first
    settings = []
    tuned = {r["chosen_setting"] for r in agg.tuning.get("families", {}).values()}
    for s in first.settings:
        chosen = s.name in tuned or (not map_class(s.family).tuning_marks_one and s.family in
                                     agg.tuning.get("families", {}))
        settings.append({
            "name": s.name, "family": s.family, "label": s.method.label, "layer": s.layer,
            "tuned": chosen,
            "method": s.key.method, "activation": s.key.activation,
            "ms_per_image": agg.ms_per_image(s.name),
            "degenerate_seeds": {str(seed): e.bootstrap.degenerate[s.name]
                                 for seed, e in agg.seeds.items()
                                 if s.name in e.bootstrap.degenerate},
            "metrics": cells["settings"][s.name],
            "exact_per_seed": {str(seed): e.metrics[s.name] for seed, e in agg.seeds.items()},
        })
    return {
        **record,
        "seeds": list(agg.seeds),
        "n_images": first.n_images,
        "n_anomalous_images": first.n_anomalous,
        "switches": {**cfg.to_json(), **record.get("switches", {})},
        "baseline": BASELINE,
        "trivial_references": cells["trivial_references"],
        "bootstrap": cells["bootstrap"],
        "n_resamples": cells["n_resamples"],
        "ci95_method": cells["ci95_method"],
        "std_method": cells["std_method"],
        "verdict_rule": cells["verdict_rule"],
        "latent": {str(seed): e.latent for seed, e in agg.seeds.items()},
        "collapsed_seeds": agg.collapsed_seeds(),
        "tuning": agg.tuning,
        "settings": settings,
    }


def write_figures(agg: Aggregate, out: Path, title: str, results: Mapping[str, Any]
                  ) -> list[Path]:
    """ROC curves (first seed, one setting per map family: chosen on training data when tuned,
    else the best on the test images) and the overlay figure with one column per map family
    on the same test images, at the images' display aspect ratio."""
    from vaecam.report.localization import best_per_family
    from vaecam.viz.curves import roc_figure
    from vaecam.viz.overlays import methods_grid

    first = agg.first
    best = [s["name"] for s in best_per_family(results)]
    curves = {name: (*first.curves[name], first.metrics[name]["pixel_auroc"]) for name in best}
    seed = next(iter(agg.seeds))
    picked = "chosen on training data" if results.get("tuning") else "best on test images"
    paths = [roc_figure(out / "roc.png", curves,
                        title=f"{title}: pixel ROC, seed {seed}, one setting per map "
                              f"({picked})")]
    ov = first.overlays
    if ov.images:
        maps = {name: torch.stack(ov.maps[name]) for name in best}
        paths.append(methods_grid(out / "overlays_methods.png", torch.stack(ov.images),
                                  torch.stack(ov.masks), maps, ov.titles, aspect=ov.aspect))
    return paths


def write_outputs(out: Path, agg: Aggregate, results: Mapping[str, Any], title: str,
                  extra_tables: Sequence[str | Table] = ()) -> dict[str, Any]:
    """Write ``results.json`` (``results`` from :func:`results_json`), ``table.md`` and the
    figures into ``out``; returns the results with the files added."""
    from vaecam.outputs import atomic_write_text
    from vaecam.outputs.portable import PortablePaths
    from vaecam.report.localization import table_markdown
    from vaecam.report.tables import write_json

    figures = write_figures(agg, out, title, results)
    text = table_markdown(results, title, extra_tables)
    data = results.get("data")
    portable = PortablePaths(out, data.get("root") if isinstance(data, Mapping) else None,
                             parents=2)  # the file names no folder of this machine
    write_json(out / "results.json", portable({**results, "table_md": text,
                                               "figures": [str(p) for p in figures]}))
    atomic_write_text(out / "table.md", text)
    return {**results, "figures": [str(p) for p in figures], "table_md": text}
