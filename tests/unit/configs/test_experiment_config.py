"""One experiment's config, built once from a nested preset, a user's file and overrides.

Checks that each option lands in the section that owns it, that a user's file and the
command's options override the preset there, that bad files fail with one line naming what to
change (an old flat preset: how to nest it), and that every packaged preset, written back as a
user's file, reads the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vaecam.cli import main
from vaecam.configs import build_config, layout, load_preset, packaged
from vaecam.configs.sections import SECTIONS, ExperimentConfig, LocalizeOptions, TrainOptions
from vaecam.errors import ConfigError

EXPERIMENTS = ("mnist", "ucsd", "mvtec", "dsprites")


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return path


def test_a_preset_builds_one_config_by_section() -> None:
    config = build_config("mnist", "smoke")
    assert isinstance(config.train, TrainOptions) and isinstance(config.localize, LocalizeOptions)
    assert config.train["lr"] == 0.001 and config.train.seeds == [0]
    assert config.localize.maps == "cheap" and config.localize["method"] == ["1", "2"]
    assert "lr" not in config.localize and "maps" not in config.train and not config.score
    assert dict(config.run) == {"preset": "smoke"}
    assert config.as_options() == {**load_preset("mnist", "smoke").options, "preset": "smoke"}


def test_dsprites_has_a_score_section() -> None:
    config = build_config("dsprites", "smoke")
    assert config.score["metric_preset"] == "reproduction" and "metric_sizes" in config.score
    assert "lr" in config.train and not config.localize


def test_overrides_go_to_their_sections_and_leave_the_original_unchanged() -> None:
    config = build_config("ucsd", "cpu")
    changed = config.with_overrides({"lr": 0.5, "maps": "recon-abs", "out": Path("o")})
    assert (changed.train["lr"], changed.localize.maps, changed.run["out"]) == (
        0.5, "recon-abs", Path("o"))
    assert config.train["lr"] != 0.5 and config.localize.maps == "cheap" and "out" not in config.run
    with pytest.raises(TypeError):
        config.train.values["lr"] = 1.0  # type: ignore[index]
    options = changed.as_options()
    options["lr"] = 2.0  # a plain copy: the config stays as built
    assert changed.train["lr"] == 0.5


def test_a_user_file_fills_from_the_preset_then_overrides_apply(tmp_path: Path) -> None:
    path = _file(tmp_path, "presets:\n  smoke:\n    train:\n      lr: 0.01\n      num_seeds: 2\n"
                 "    localize:\n      resamples: 200\n")
    config = build_config("mvtec", "smoke", path).with_overrides({"resamples": 300})
    packaged_smoke = load_preset("mvtec", "smoke").options
    assert config.train["lr"] == 0.01 and config.train.seeds == [0, 1]
    assert config.localize["resamples"] == 300
    assert config.train["batch_size"] == packaged_smoke["batch_size"]
    assert config.about.endswith("(with mine.yaml)")


@pytest.mark.parametrize(("text", "message"), [
    ("presets:\n  smoke:\n    train:\n      batch_size: eight\n",
     "preset smoke: batch_size must be an integer >= 1, not 'eight'"),
    ("presets:\n  smoke:\n    train:\n      batchsize: 8\n",
     "unknown key 'batchsize' (did you mean 'batch_size'?)"),
    ("presets:\n  smoke:\n    localize:\n      lr: 0.1\n",
     "preset smoke: 'lr' belongs under 'train:', not 'localize:' (as in "
     "vaecam/configs/mnist.yaml)"),
    ("presets:\n  smoke:\n    trian:\n      lr: 0.1\n",
     "unknown section 'trian' (did you mean 'train'?); a preset of mnist has the sections "
     "train, localize"),
    ("presets:\n  smoke:\n    score:\n      lr: 0.1\n",
     "unknown section 'score'; a preset of mnist has the sections train, localize"),
    ("presets:\n  smoke:\n    train: [1, 2]\n",
     "preset smoke, section train: must be a mapping of option names to values"),
    ("presets:\n  smoke: 3\n", "preset 'smoke' must be a mapping"),
    ("presets:\n  smoke:\n    train:\n      seeds: 3\n", "seeds must be a list of seed numbers"),
])
def test_bad_files_fail_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        build_config("mnist", "smoke", _file(tmp_path, text))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_an_old_flat_file_says_how_to_nest_it(tmp_path: Path) -> None:
    path = _file(tmp_path, "presets:\n  cpu:\n    lr: 0.01\n    max_epochs: 3\n"
                 "    resamples: 200\n    maps: cheap\n")
    with pytest.raises(ConfigError) as error:
        build_config("mnist", "cpu", path)
    assert str(error.value) == (
        f"config file {path}, preset cpu: flat preset keys (lr, max_epochs, resamples, ...) "
        "found; nest them under 'train:' / 'localize:' as in vaecam/configs/mnist.yaml")


@pytest.mark.parametrize("command", [
    ["train", "mnist", "--digit", "1", "--preset", "cpu", "--config", "{file}", "--out", "{out}"],
    ["reproduce", "--preset", "cpu", "--only", "dsprites", "--config", "dsprites={file}",
     "--out", "{out}", "--dry-run"],
])
def test_the_commands_refuse_an_old_flat_file_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    path = _file(tmp_path, "presets:\n  cpu:\n    lr: 0.01\n")
    args = [a.format(file=path, out=tmp_path / "out") for a in command]
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("vaecam: error: ") and "flat preset keys (lr) found" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_packaged_preset_reads_the_same_when_written_back(
        tmp_path: Path, experiment: str) -> None:
    """Flat options nested again by the layout, as a user's file, give the same preset."""
    sections = layout(experiment)
    for preset in packaged(experiment)["presets"]:
        config = build_config(experiment, preset)
        nested = {s: dict(getattr(config, s)) for s in SECTIONS if getattr(config, s)}
        assert tuple(nested) == sections.sections
        for section, options in nested.items():
            assert {sections.owner[key] for key in options} == {section}
        path = _file(tmp_path, yaml.safe_dump({"presets": {preset: nested}}))
        again = build_config(experiment, preset, path)
        assert again.as_options() == config.as_options()
        assert ExperimentConfig.of(experiment, preset, config.about, sections,
                                   config.as_options()) == config


def test_the_experiments_have_the_sections_they_use() -> None:
    assert {e: layout(e).sections for e in EXPERIMENTS} == {
        "mnist": ("train", "localize"), "ucsd": ("train", "localize"),
        "mvtec": ("train", "localize"), "dsprites": ("train", "score")}
    assert layout("mnist").owner["num_seeds"] == "train"
