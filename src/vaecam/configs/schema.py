"""Every option and config value of vaecam, validated in one place.

Command-line options and YAML config values go through the same value checks (types, ranges,
choices), so ``--batch-size eight`` and ``batch_size: eight`` fail alike, with one line that
names the option and says what it accepts. :data:`OPTIONS` maps each option's name (the argparse
``dest``, which is also its YAML key) to an :class:`Option`; the CLI takes each option's
``argparse`` type from here, and :func:`validate_options` checks a whole preset or config file,
naming the closest valid key for an unknown one.
"""

from __future__ import annotations

import argparse
import difflib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaecam.errors import ConfigError

Check = Callable[[Any], Any]


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError("an integer")


def _real(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("a number") from None
    if not math.isfinite(number):
        raise ValueError("a finite number")
    return number


def integer(minimum: int | None = None, maximum: int | None = None,
            also: Sequence[int] = ()) -> Check:
    """An int within [minimum, maximum] (either bound optional), or one of ``also``."""
    words = [f">= {minimum}" if minimum is not None else "", f"<= {maximum}" if maximum is not None
             else ""]
    want = "an integer " + " and ".join(w for w in words if w)
    if also:
        want += " (or " + ", ".join(map(str, also)) + ")"

    def check(value: Any) -> int:
        try:
            number = _integer(value)
        except ValueError:
            raise ValueError(want.strip()) from None
        if number in also:
            return number
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            raise ValueError(want.strip())
        return number

    return check


def real(minimum: float | None = None, maximum: float | None = None,
         exclusive_minimum: bool = False) -> Check:
    """A finite float within the bounds (``exclusive_minimum``: strictly above ``minimum``)."""
    sign = ">" if exclusive_minimum else ">="
    words = [f"{sign} {minimum:g}" if minimum is not None else "",
             f"<= {maximum:g}" if maximum is not None else ""]
    want = ("a finite number " + " and ".join(w for w in words if w)).strip()

    def check(value: Any) -> float:
        try:
            number = _real(value)
        except ValueError:
            raise ValueError(want) from None
        low_bad = minimum is not None and (number <= minimum if exclusive_minimum
                                           else number < minimum)
        if low_bad or (maximum is not None and number > maximum):
            raise ValueError(want)
        return number

    return check


def choice(*values: str) -> Check:
    """One of ``values`` (compared as strings)."""

    def check(value: Any) -> str:
        text = str(value)
        if text not in values:
            raise ValueError(f"one of {', '.join(values)}")
        return text

    check.choices = values  # type: ignore[attr-defined]
    return check


def text(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value):
        raise ValueError("a non-empty text")
    return str(value)


def path(value: Any) -> Path:
    """A file or folder path (its existence is checked where it is used)."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise ValueError("a path")
    return Path(str(value)).expanduser()


def flag(value: Any) -> bool:
    """true/false (YAML booleans; on the command line flags take no value)."""
    if isinstance(value, bool):
        return value
    raise ValueError("true or false")


def devices(value: Any) -> int | str:
    """A number of devices >= 1, or ``auto``."""
    if str(value) == "auto":
        return "auto"
    try:
        number = _integer(value)
    except ValueError:
        raise ValueError("a number of devices >= 1, or auto") from None
    if number < 1:
        raise ValueError("a number of devices >= 1, or auto")
    return number


def pairs(value: Any) -> str | int:
    """``all`` latent pairs, or a number of random distinct pairs >= 1."""
    if str(value) == "all":
        return "all"
    try:
        number = _integer(value)
    except ValueError:
        raise ValueError("all, or a number of pairs >= 1") from None
    if number < 1:
        raise ValueError("all, or a number of pairs >= 1")
    return number


def device(value: Any) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    name = str(value)
    if name in ("auto", "cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit()):
        return name
    raise ValueError("auto, cpu, cuda or cuda:N")


def sizes(value: Any) -> dict[str, int]:
    """A mapping of metric size names to integers >= 1."""
    if not isinstance(value, Mapping):
        raise ValueError("a mapping of names to integers")
    check = integer(1)
    return {str(k): check(v) for k, v in value.items()}


@dataclass(frozen=True)
class Option:
    """How one option's values are checked; ``many``: a list of such values (nargs='+'), of
    exactly ``count`` values when that is set."""

    check: Check
    many: bool = False
    count: int | None = None

    @property
    def nargs(self) -> int | str | None:
        return self.count or ("+" if self.many else None)

    def parse(self, value: Any) -> Any:
        """The checked value (a list for ``many``); ``ValueError`` says what is accepted."""
        if not self.many:
            return self.check(value)
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items or (self.count and len(items) != self.count):
            raise ValueError(f"a list of {self.count or 'at least one'} value(s)")
        return [self.check(v) for v in items]

    def argparse_type(self, name: str) -> Callable[[str], Any]:
        """A ``type=`` for argparse: the same check, failing with argparse's error."""

        def convert(raw: str) -> Any:
            try:
                return self.check(raw)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(f"must be {exc}, not {raw!r}") from None

        convert.__name__ = name
        return convert


ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "fsdp",
              "single_device")
METHODS = ("1", "2", "normal-difference")
MAP_ACTIVATIONS = ("relu", "abs", "sigmoid", "none")
MNIST_ANOMALIES = ("pasted", "erased", "in-digit")  # see vaecam.experiments.mnist_anomalies
MNIST_REGIONS = ("image", "digit-box")  # see vaecam.experiments.mnist_regions

OPTIONS: dict[str, Option] = {
    # training
    "out": Option(path),
    "max_epochs": Option(integer(1, also=(-1,))),
    "max_steps": Option(integer(1, also=(-1,))),
    "batch_size": Option(integer(1)),
    "lr": Option(real(0, exclusive_minimum=True)),
    "seeds": Option(integer(0), many=True),
    "num_seeds": Option(integer(1)),
    "yes": Option(flag),
    "seed": Option(integer(0)),
    "accelerator": Option(choice(*ACCELERATORS)),
    "devices": Option(devices),
    "strategy": Option(choice(*STRATEGIES)),
    "num_nodes": Option(integer(1)),
    "precision": Option(choice(*PRECISIONS)),
    "num_workers": Option(integer(0)),
    "checkpoint_every": Option(integer(1)),
    "checkpoint_every_steps": Option(integer(0)),
    "log_every_n_steps": Option(integer(1)),
    "kl_warmup_epochs": Option(real(0)),
    "free_bits": Option(real(0)),
    "recon_scale": Option(real(0, exclusive_minimum=True)),
    "resume": Option(flag),
    "track_localization": Option(flag),
    "track_every": Option(integer(1)),
    "track_images": Option(integer(4)),
    "data_on_device": Option(flag),
    "channels_last": Option(flag),
    "compile": Option(flag),
    "overwrite": Option(flag),
    "no_progress": Option(flag),
    # models and data
    "digit": Option(integer(0, 9)),
    "digits": Option(integer(0, 9), many=True),
    "latent_dim": Option(integer(1)),
    "hidden": Option(integer(1)),
    "channels": Option(integer(1), many=True, count=3),
    "image_size": Option(integer(8)),
    "loss": Option(choice("bce", "mse")),
    "recipe": Option(choice("paper", "standardized", "batchnorm", "live")),
    "source": Option(choice("bundled", "torchvision")),
    "mnist_root": Option(path),
    "download": Option(flag),
    "data": Option(path),
    "category": Option(text),
    "pretrained": Option(flag),
    "num_augmented": Option(integer(0)),
    "padding": Option(choice("black", "upper-left")),
    "rotation": Option(real(0, 180)),
    "hflip_p": Option(real(0, 1)),
    "n_anomalies": Option(integer(1)),
    "anomaly": Option(choice(*MNIST_ANOMALIES)),
    "region": Option(choice(*MNIST_REGIONS)),
    "demo_seeds": Option(integer(0), many=True),
    # attention and localisation
    "method": Option(choice(*METHODS), many=True),
    "activation": Option(choice(*MAP_ACTIVATIONS), many=True),
    "layer": Option(text, many=True),
    "grad_norm": Option(choice("none", "rms-batch", "rms-image")),
    "normalize": Option(flag),
    "no_upsample": Option(flag),
    "resize": Option(choice("upsample-maps", "downscale-masks")),
    "mask_rule": Option(choice("majority", "any")),
    "max_images": Option(integer(1)),
    "eval_batch_size": Option(integer(1)),
    "device": Option(device),
    "overlays": Option(integer(0)),
    "frames": Option(choice("all", "anomalous-only")),
    "clips": Option(text, many=True),
    "checkpoint": Option(path),
    "maps": Option(text),
    "smooth_sigma": Option(real(0)),
    "projection_steps": Option(integer(0)),
    "projection_step_size": Option(real(0, exclusive_minimum=True)),
    "projection_distance_weight": Option(real(0)),
    "resamples": Option(integer(100)),
    "tune": Option(flag),
    "tune_images": Option(integer(4)),
    "activation_order": Option(choice("before", "after-upsample")),
    "n": Option(integer(1)),
    "chunk": Option(integer(1)),
    "images": Option(path),
    # dSprites
    "model": Option(choice("factorvae", "ad-factorvae")),
    "models": Option(choice("factorvae", "ad-factorvae"), many=True),
    "gamma": Option(real(0)),
    "gammas": Option(real(0), many=True),
    "lambda": Option(real(0)),
    "init": Option(choice("default", "normal", "kaiming-normal")),
    "d_lr": Option(real(0, exclusive_minimum=True)),
    "ad_layer": Option(text),
    "ad_activation": Option(choice("relu", "abs")),
    "ad_pairs": Option(pairs),
    "ad_aggregation": Option(choice("mean", "sum")),
    "score_every": Option(integer(0)),
    "score_sizes": Option(sizes),
    "metric_preset": Option(choice("reproduction", "disentanglement_lib")),
    "metric_sizes": Option(sizes),
    "metric_seed": Option(integer(0)),
    "mig_num_train": Option(integer(1)),
    "recon_samples": Option(integer(1)),
    "dsprites": Option(text),
    # generated and downloaded data
    "name": Option(text),
    "n_train": Option(integer(1)),
    "size": Option(integer(16)),
    "n_test_good": Option(integer(1)),
    "n_test_defect": Option(integer(1)),
    "n_test_normal": Option(integer(1)),
    "n_test_abnormal": Option(integer(1)),
    "grayscale": Option(flag),
    "frame_size": Option(integer(16), many=True, count=2),
    "n_test_clips": Option(integer(1)),
    "frames_per_clip": Option(integer(2)),
    "dest": Option(path),
    "sha256": Option(text),
}


def check_value(name: str, value: Any, where: str = "") -> Any:
    """``value`` checked against option ``name``; one-line ConfigError otherwise."""
    option = OPTIONS.get(name)
    if option is None:
        return value
    try:
        return option.parse(value)
    except ValueError as exc:
        label = f"{where}{name}" if where else "--" + name.replace("_", "-")
        raise ConfigError(f"{label} must be {exc}, not {value!r}") from None


def closest(name: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name, or an empty string."""
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def validate_options(options: Mapping[str, Any], valid: Iterable[str], where: str
                     ) -> dict[str, Any]:
    """Check every key (known, else the closest valid key is named) and value of a preset."""
    valid = set(valid)
    checked = {}
    for key, value in options.items():
        if key not in valid:
            raise ConfigError(f"{where}unknown key '{key}'{closest(key, valid)}; valid keys: "
                              f"{', '.join(sorted(valid))}")
        checked[key] = check_value(key, value, where)
    return checked
