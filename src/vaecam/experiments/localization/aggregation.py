"""Every seed's evaluation combined: cells over seeds with the two-level interval of the seed
mean and the paired verdicts against the baseline and the better trivial reference."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vaecam.experiments.localization.config import REFERENCES, MapSetting
from vaecam.experiments.localization.evaluation import SeedEvaluation
from vaecam.metrics.bootstrap import aggregate_seeds


@dataclass
class Aggregate:
    """Every seed's evaluation, the cells over seeds (``aggregate_seeds`` JSON) and how map
    options were chosen on training data (empty without tuning)."""

    seeds: dict[int, SeedEvaluation]
    cells: dict[str, Any]
    tuning: dict[str, Any] = field(default_factory=dict)

    @property
    def first(self) -> SeedEvaluation:
        return next(iter(self.seeds.values()))

    def collapsed_seeds(self) -> list[int]:
        return [seed for seed, e in self.seeds.items() if e.latent["collapsed"]]

    def cell(self, setting: str, metric: str) -> dict[str, Any] | None:
        return self.cells["settings"].get(setting, {}).get(metric)

    def ms_per_image(self, setting: str) -> float:
        return float(np.mean([e.ms_per_image[setting] for e in self.seeds.values()]))


def aggregate(evaluations: Mapping[int, SeedEvaluation], unit: str = "image",
              n_units: int | None = None, bootstrap_seed: int = 0) -> Aggregate:
    """Cells over seeds (two-level intervals, verdicts against the baseline and the better
    trivial reference); every seed must have been scored on the same resamples of the test
    ``unit`` (``n_units`` of them; default one per image)."""
    first = next(iter(evaluations.values()))
    cells = aggregate_seeds([e.bootstrap for e in evaluations.values()], seeds=list(evaluations),
                            seed=bootstrap_seed, references=REFERENCES, unit=unit,
                            n_units=first.n_images if n_units is None else n_units)
    return Aggregate(dict(evaluations), cells)


def best_attention(agg: Aggregate, metric: str = "pixel_auroc") -> dict[str, MapSetting]:
    """Per layer label, the attention setting with the highest mean ``metric``."""
    best: dict[str, MapSetting] = {}
    for s in agg.first.settings:
        if not s.is_attention:
            continue
        value = (agg.cell(s.name, metric) or {}).get("mean", -1.0)
        current = best.get(s.layer)
        if current is None or value > (agg.cell(current.name, metric) or {}).get("mean", -1.0):
            best[s.layer] = s
    return best
