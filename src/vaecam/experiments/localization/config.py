"""The switches of a localisation run (``--maps``, layers, attention grid, resolution,
bootstrap, tuning) and the settings they expand to: one row of results each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import Tensor, nn

from vaecam.attention import LatentStats
from vaecam.errors import ConfigError
from vaecam.maps import AnomalyMap, parse_maps
from vaecam.maps.registry import build_setting, map_class
from vaecam.maps.setting import Setting, SettingContext

Resize = Literal["upsample-maps", "downscale-masks"]
RESIZE_MODES = ("upsample-maps", "downscale-masks")
BASELINE = "recon-abs"
# Trivial maps every run scores: a map that does not beat them has not shown anything.
REFERENCES = ("mean-diff", "random")



@dataclass(frozen=True)
class MapSetting:
    """One row of results: its setting (family, grid point, options) and the map method built
    from it."""

    key: Setting
    method: AnomalyMap

    @property
    def name(self) -> str:
        """The row label (``attention conv3 m2 relu``, ``grad-kl``)."""
        return self.key.label()

    @property
    def family(self) -> str:
        return self.key.family

    @property
    def layer(self) -> str:
        return self.key.layer

    @property
    def is_attention(self) -> bool:
        return self.family == "attention"


@dataclass
class LocalizationConfig:
    """The switches of a localisation run.

    ``maps`` is a ``--maps`` value (names, ``cheap``, ``all``); ``attention`` in it expands to
    the grid ``layers`` x ``methods`` x ``activations``. ``layers`` maps table labels (conv3)
    to module names (encoder.4).
    """

    layers: dict[str, str]
    maps: str = "cheap"
    methods: Sequence[str] = ("1", "2")
    activations: Sequence[str] = ("relu", "abs")
    grad_norm: str = "none"
    activation_order: str = "before"
    resize: Resize = "upsample-maps"
    mask_rule: Literal["majority", "any"] = "majority"
    smooth_sigma: float | None = None
    projection: dict[str, Any] = field(default_factory=dict)
    max_fpr: float = 0.3
    n_resamples: int = 1000
    bootstrap_seed: int = 0
    tune: bool = False
    tune_images: int = 64
    chosen: dict[str, dict[str, Any]] = field(default_factory=dict)
    tuned_attention: str = ""
    region: str = "image"  # evaluation region of the pixel metrics (named by the experiment)

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"--resize must be one of {', '.join(RESIZE_MODES)}")
        if self.n_resamples < 100:
            raise ConfigError(f"--resamples must be at least 100, not {self.n_resamples}")

    def context(self, stats: LatentStats | None = None,
                mean_training_image: Tensor | None = None) -> SettingContext:
        """What this run fixes for every map family: layers, attention switches, the options
        given on the command line, and the training data's statistics and mean image."""
        options: dict[str, dict[str, Any]] = {}
        if self.smooth_sigma is not None:
            for name in ("grad-elbo", "grad-kl", "grad-recon", "combi"):
                options[name] = {"smooth_sigma": self.smooth_sigma}
        if self.projection:
            options["projection"] = dict(self.projection)
        return SettingContext(self.layers, tuple(self.methods), tuple(self.activations),
                              self.grad_norm, self.activation_order,
                              self.resize == "upsample-maps", options, stats,
                              mean_training_image)

    def settings(self, model: nn.Module, stats: LatentStats | None = None,
                 mean_training_image: Tensor | None = None) -> list[MapSetting]:
        """The baseline and the trivial references first, then every map of ``maps``, each
        expanded by its class (attention into its grid) with the options chosen on training
        data; ``mean_training_image`` is what ``mean-diff`` subtracts."""
        context = self.context(stats, mean_training_image)
        return [MapSetting(key, build_setting(key, context))
                for family in self.families()
                for key in map_class(family).settings(context, self.chosen.get(family))]

    def families(self) -> list[str]:
        """The map families asked for, the baseline and the trivial references first."""
        return [m.name for m in parse_maps(",".join((BASELINE, *REFERENCES, self.maps)))]

    def needs_latent_stats(self) -> bool:
        """True when a map asked for needs latent statistics of the training data."""
        context = self.context()
        return any(map_class(f).needs_latent_stats(context) for f in self.families())

    def candidates(self, stats: LatentStats | None) -> dict[str, list[MapSetting]]:
        """The settings tuning chooses among, per tunable family that was asked for."""
        context = self.context(stats)
        out: dict[str, list[MapSetting]] = {}
        for family in self.families():
            keys = map_class(family).candidates(context)
            if keys:
                out[family] = [MapSetting(key, build_setting(key, context)) for key in keys]
        return out

    def apply_choice(self, family: str, candidates: Sequence[MapSetting], best: int) -> None:
        """Fix ``family`` to its candidate ``best`` (chosen on training data), or for a family
        whose every setting is scored (attention), mark that one."""
        chosen = candidates[best].key
        if map_class(family).tuning_marks_one:
            self.tuned_attention = chosen.label()
        else:
            self.chosen[family] = dict(chosen.options)

    def to_json(self) -> dict[str, Any]:
        return {"maps": self.maps, "layers": self.layers, "methods": list(self.methods),
                "activations": list(self.activations), "grad_norm": self.grad_norm,
                "activation_order": self.activation_order, "resize": self.resize,
                "mask_rule": self.mask_rule, "smooth_sigma": self.smooth_sigma,
                "projection": self.projection, "max_fpr": self.max_fpr,
                "n_resamples": self.n_resamples, "bootstrap_seed": self.bootstrap_seed,
                "region": self.region,
                "baseline": BASELINE, "trivial_references": list(REFERENCES),
                "tune": self.tune, "tune_images": self.tune_images,
                "chosen_on_training_data": self.chosen,
                "attention_chosen_on_training_data": self.tuned_attention}


def resolve_layers(model: nn.Module, requested: Sequence[str]) -> dict[str, str]:
    """Table label -> module name for layers given by label (``conv2``) or dotted name.

    Labels come from the model's ``conv_layers``; a name it does not list is its own label.
    """
    known: dict[str, str] = dict(getattr(model, "conv_layers", {}))
    inverse = {module: label for label, module in known.items()}
    modules = dict(model.named_modules())
    layers = {}
    for name in requested:
        module = known.get(name, name)
        if module not in modules:
            choices = ", ".join(f"{k} ({v})" for k, v in known.items()) or "its conv layers"
            raise ConfigError(f"unknown layer '{name}'; choose among {choices}")
        layers[inverse.get(module, name)] = module
    return layers



def config_from_options(model: nn.Module, options: Mapping[str, Any],
                        default_layers: Sequence[str]) -> LocalizationConfig:
    """The switches of a run from merged preset + command-line options.

    ``--no-upsample`` (shared attention option) means ``--resize downscale-masks`` here.
    """
    resize = "downscale-masks" if options.get("no_upsample") else options.get("resize")
    projection = {key: options[f"projection_{key}"]
                  for key in ("steps", "step_size", "distance_weight")
                  if options.get(f"projection_{key}") is not None}
    return LocalizationConfig(
        layers=resolve_layers(model, options.get("layer") or default_layers),
        maps=str(options.get("maps") or "cheap"),
        methods=[str(m) for m in options.get("method") or ("1", "2")],
        activations=list(options.get("activation") or ("relu", "abs")),
        grad_norm=options.get("grad_norm") or "none",
        activation_order=options.get("activation_order") or "before",
        resize=resize or "upsample-maps",
        mask_rule=options.get("mask_rule") or "majority",
        smooth_sigma=options.get("smooth_sigma"),
        projection=projection,
        n_resamples=int(options.get("resamples") or 1000),
        tune=bool(options.get("tune", False)),
        tune_images=int(options.get("tune_images") or 64),
    )
