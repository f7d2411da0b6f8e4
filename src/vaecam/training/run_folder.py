"""One training run's folder, and the record that makes resuming it safe.

Layout: ``checkpoints/best.ckpt`` and ``checkpoints/last.ckpt``, ``logs/csv/version_N`` and
``logs/tensorboard/version_N`` (one version per launch), and ``train_config.json``. The config
file records the experiment and the run's *identity*: everything that fixes the data, the model
and the optimisation (model configuration, loss and optimiser settings, data description, seed,
batch size, devices). ``--resume`` compares the identity of the new command with the stored one
and refuses any difference with a one-line error naming it: a run resumed with another learning
rate or category would silently be two runs in one. Paths in the file are written relative to
the run folder (``$OUT``, ``$OUT/../..``, see :mod:`vaecam.report.portable`) and read back as
absolute paths, so a run folder moved together with its data can still be resumed.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vaecam.errors import ConfigError
from vaecam.outputs import atomic_write_text
from vaecam.outputs.portable import PortablePaths, resolve_paths

CONFIG_NAME = "train_config.json"
# Identity keys that users know under another option name.
_OPTION_NAMES = {"root": "data", "lambda_ad": "lambda", "model_name": "model", "variant": "model",
                 "source": "source", "num_augmented": "num-augmented"}


def checkpoint_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "checkpoints"


def last_checkpoint(out_dir: Path) -> Path:
    return checkpoint_dir(out_dir) / "last.ckpt"


def best_checkpoint(out_dir: Path) -> Path:
    return checkpoint_dir(out_dir) / "best.ckpt"


def plain(value: Any) -> Any:
    """``value`` as JSON-comparable data: paths as strings, tuples as lists, recursively."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def identity_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """One ``--option: new here, old in the run`` phrase per differing identity value."""
    old, new = _flatten(plain(stored)), _flatten(plain(current))
    phrases = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            leaf = key.rsplit(".", 1)[-1]
            option = "--" + _OPTION_NAMES.get(leaf, leaf).replace("_", "-")
            phrases.append(f"{option} is {new.get(key)!r} here but {old.get(key)!r} in the run")
    return phrases


def read_run_record(out_dir: Path) -> dict[str, Any] | None:
    """The ``train_config.json`` of a run folder, its paths absolute, or None if it has none
    (or it is unreadable)."""
    try:
        data = json.loads((Path(out_dir) / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return None
    return resolve_paths(data, out_dir) if isinstance(data, dict) else None


class RunMismatch(ConfigError):
    """``--resume`` asked for a run whose stored identity differs from the new options."""


def check_resumable(out_dir: Path, experiment: str, identity: Mapping[str, Any]) -> Path:
    """The checkpoint to resume ``out_dir`` from, after checking that the run is the same one."""
    last = last_checkpoint(out_dir)
    record = read_run_record(out_dir)
    if record is not None and record.get("experiment") != experiment:
        raise ConfigError(
            f"{out_dir} holds a '{record.get('experiment')}' training run, not '{experiment}'; "
            "resume it with its own command or choose another --out"
        )
    if not last.is_file():
        raise ConfigError(f"nothing to resume: {last} does not exist; drop --resume to start")
    if record is None:
        raise ConfigError(f"{out_dir} has no readable {CONFIG_NAME}; it cannot be resumed safely, "
                          "start a new run in another --out")
    from vaecam.training.checkpoints import check_resumable_checkpoint

    check_resumable_checkpoint(last, best_checkpoint(out_dir))
    differences = identity_differences(record.get("identity", {}), identity)
    if differences:
        more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
        raise RunMismatch(
            f"cannot resume {out_dir}: {differences[0]}{more}; use the run's own options or "
            "start a new run in another --out"
        )
    return last


def write_run_record(out_dir: Path, experiment: str, identity: Mapping[str, Any],
                     settings: Mapping[str, Any], notes: Mapping[str, Any] | None = None
                     ) -> Path:
    """Write ``train_config.json``: experiment, identity, how this launch trained, and
    ``notes`` (e.g. which test images the localisation tracker watches); paths relative to
    ``out_dir``."""
    from vaecam import __version__

    record = {
        "experiment": experiment,
        "identity": plain(identity),
        "train": plain(settings),
        **({"notes": plain(notes)} if notes else {}),
        "vaecam": __version__,
        "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return atomic_write_text(Path(out_dir) / CONFIG_NAME, json.dumps(
        PortablePaths.anchored(out_dir)(record), indent=2, default=str) + "\n")
