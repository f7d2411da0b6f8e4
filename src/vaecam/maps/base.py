"""The interface every anomaly-map method follows, and the per-batch forward pass they share.

A method turns ``(model, images)`` into a ``(B, H, W)`` map at the image size. Methods do not run
the model themselves where they can avoid it: :func:`compute_maps` builds one
:class:`ForwardCache` per batch, which runs the VAE once in eval mode (``z = mu``, so maps are
deterministic) and hands ``mu``, ``logvar``, the reconstruction and, when some method asks for
them, the input gradients of the negative ELBO's terms to every method.

No side effects on the model: every sub-module's train/eval flag is restored, gradients are
taken with ``torch.autograd.grad`` with respect to the input only (parameter ``.grad`` is never
written, ``requires_grad`` of parameters is never touched) and no hook stays attached.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from vaecam.errors import ConfigError
from vaecam.maps.reconstruction_error import gaussian_filter
from vaecam.maps.setting import Setting, SettingContext
from vaecam.models.base import VAE, eval_mode, gaussian_kl

GradientTerm = Literal["kl", "recon", "elbo"]


def has_decoder(model: nn.Module) -> bool:
    """True if ``model`` defines ``decode(z)`` (a :class:`VAE` that does not override it has
    none)."""
    decode = getattr(type(model), "decode", None)
    return callable(decode) and decode is not VAE.decode


def check_non_negative(option: str, value: float) -> float:
    if not value >= 0:
        raise ConfigError(f"{option} must be >= 0, got {value}")
    return float(value)


def check_positive(option: str, value: float) -> float:
    if not value > 0:
        raise ConfigError(f"{option} must be > 0, got {value}")
    return float(value)


# Gaussian blurs (pixels) that tuning chooses among for the smoothed maps; 0 is none.
SMOOTHING_SIGMAS = (0.0, 1.0, 2.0, 4.0, 8.0)


def smooth(maps: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of (B, H, W) maps (scipy-style, mirrored borders); ``sigma = 0``: none."""
    return gaussian_filter(maps[:, None], sigma)[:, 0] if sigma > 0 else maps


def min_max(maps: Tensor, scope: Literal["image", "batch"] = "image") -> Tensor:
    """Rescale (B, H, W) maps to [0, 1] per image, or with one min and max for the batch."""
    dims = (-2, -1) if scope == "image" else (0, -2, -1)
    lo, hi = maps.amin(dim=dims, keepdim=True), maps.amax(dim=dims, keepdim=True)
    return (maps - lo) / (hi - lo).clamp_min(1e-12)


class ForwardCache:
    """One batch's forward pass, run once (lazily) and shared by every method.

    ``mu``, ``logvar`` and ``recon`` (``decode(mu)``) come from the model in eval mode. When
    ``gradients`` names terms of the negative ELBO (``kl``, ``recon``, ``elbo``), the same
    forward pass runs with gradients enabled and :meth:`input_gradient` gives
    ``d term / d images`` (B, C, H, W); the per-sample terms are summed over the batch, so each
    image's gradient is its own (eval mode keeps images independent). Only the backward passes
    needed are run: ``kl`` alone one through the encoder (the decoder runs without a graph),
    ``elbo`` alone one through the whole VAE, otherwise one for ``kl`` and one for ``recon``
    (``elbo`` is their sum). :meth:`memo` keeps other per-batch results (attention maps) for
    methods that share them.
    """

    def __init__(self, model: nn.Module, images: Tensor, gradients: Iterable[GradientTerm] = ()):
        self.model = model
        self.images = images.detach()
        self.terms = frozenset(gradients)
        self._outputs: tuple[Tensor, Tensor, Tensor] | None = None
        self._gradients: dict[str, Tensor] = {}
        self._memo: dict[Hashable, Tensor] = {}

    @property
    def mu(self) -> Tensor:
        return self._forward()[0]

    @property
    def logvar(self) -> Tensor:
        return self._forward()[1]

    @property
    def recon(self) -> Tensor:
        return self._forward()[2]

    def input_gradient(self, term: GradientTerm) -> Tensor:
        """``d term / d images`` summed over the batch's per-sample terms: (B, C, H, W)."""
        if term not in self.terms:
            raise ValueError(f"the cache was not asked for the '{term}' gradient")
        self._forward()
        return self._gradients[term]

    def memo(self, key: Hashable, compute: Callable[[], Tensor]) -> Tensor:
        """``compute()`` once per batch and ``key``; later calls return the kept result."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _forward(self) -> tuple[Tensor, Tensor, Tensor]:
        if self._outputs is None:
            with eval_mode(self.model):
                if self.terms:
                    self._outputs = self._forward_with_gradients()
                else:
                    with torch.no_grad():
                        mu, logvar = self.model.encode(self.images)
                        self._outputs = (mu, logvar, self.model.decode(mu))
        return self._outputs

    def _forward_with_gradients(self) -> tuple[Tensor, Tensor, Tensor]:
        with torch.enable_grad():
            x = self.images.clone().requires_grad_(True)
            mu, logvar = self.model.encode(x)
            kl = gaussian_kl(mu, logvar).sum()
            if self.terms == {"kl"}:  # the decoder stays out of the graph
                with torch.no_grad():
                    recon = self.model.decode(mu)
                (self._gradients["kl"],) = torch.autograd.grad(kl, x)
                return mu.detach(), logvar.detach(), recon
            recon = self.model.decode(mu)
            rec = self.model.reconstruction_loss(recon, x).sum()
            if self.terms == {"elbo"}:
                (self._gradients["elbo"],) = torch.autograd.grad(kl + rec, x)
            else:
                (grad_kl,) = torch.autograd.grad(kl, x, retain_graph=True)
                (grad_rec,) = torch.autograd.grad(rec, x)
                self._gradients.update(kl=grad_kl, recon=grad_rec, elbo=grad_kl + grad_rec)
        return mu.detach(), logvar.detach(), recon.detach()


class AnomalyMap(ABC):
    """One anomaly-map method with its options fixed; subclasses implement :meth:`compute`.

    Class attributes: ``name`` (the CLI name), ``summary`` (what the map is, in the ``--maps``
    help), ``expensive`` (left out of the ``cheap`` set), ``needs_decoder`` (the method uses
    reconstructions), ``needs_loss`` (it differentiates the model's ``reconstruction_loss``),
    ``reads_latent`` (its score is built from ``mu`` or the KL term, so a collapsed latent makes
    it no evidence), ``tuning_options`` (the candidate options chosen among on training data)
    and ``tuning_marks_one`` (tuning marks one of the family's settings instead of fixing the
    family to it). The classmethods say how a run expands the family into settings.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    expensive: ClassVar[bool] = False
    needs_decoder: ClassVar[bool] = True
    needs_loss: ClassVar[bool] = False
    reads_latent: ClassVar[bool] = False
    tuning_options: ClassVar[tuple[Mapping[str, Any], ...]] = ()
    tuning_marks_one: ClassVar[bool] = False

    @classmethod
    def settings(cls, context: SettingContext, chosen: Mapping[str, Any] | None = None
                 ) -> list[Setting]:
        """The settings a run evaluates: by default one, with the options given for this map on
        the command line and those ``chosen`` on training data (which win)."""
        return [Setting(cls.name, options={**context.options.get(cls.name, {}), **(chosen or {})})]

    @classmethod
    def candidates(cls, context: SettingContext) -> list[Setting]:
        """The settings tuning chooses among on training data (none: the map is not tuned)."""
        return [Setting(cls.name, options=options) for options in cls.tuning_options]

    @classmethod
    def needs_latent_stats(cls, context: SettingContext) -> bool:
        """True when the run's settings of this map need latent statistics of the training
        data (:class:`vaecam.attention.LatentStats`)."""
        return False

    @classmethod
    def run_options(cls, context: SettingContext) -> dict[str, Any]:
        """Build options that come from the run's training data rather than from the setting
        (latent statistics, the mean training image)."""
        return {}

    def changed_options(self) -> list[str]:
        """``key=value`` for every constructor option (a plain value kept as an attribute of the
        same name) that differs from its default: what tells two settings apart."""
        changed = []
        for key, param in inspect.signature(type(self).__init__).parameters.items():
            value = getattr(self, key, param.default)
            plain = isinstance(value, (bool, int, float, str)) or value is None
            if key == "self" or param.default is inspect.Parameter.empty or not plain:
                continue
            if value != param.default:
                shown = f"{value:g}" if isinstance(value, float) else value
                changed.append(f"{key}={shown}")
        return changed

    @property
    def label(self) -> str:
        """Key of this method's maps in :func:`compute_maps`' result: the name and every
        option that differs from its default."""
        changed = self.changed_options()
        return f"{self.name}({', '.join(changed)})" if changed else self.name

    @property
    def native_resolution(self) -> bool:
        """True when the maps keep the resolution of a feature layer instead of the image's."""
        return False

    @property
    def input_gradients(self) -> frozenset[GradientTerm]:
        """Terms of the negative ELBO whose input gradient the method reads from the cache."""
        return frozenset()

    def check(self, model: nn.Module) -> None:
        """Raise :class:`ConfigError` if ``model`` lacks what this method needs."""
        if not callable(getattr(model, "encode", None)):
            raise ConfigError(f"map '{self.name}' needs a model with encode(x) -> (mu, logvar)")
        if self.needs_decoder and not has_decoder(model):
            raise ConfigError(
                f"map '{self.name}' needs a model with decode(z); this model has none: "
                "use the attention map only"
            )
        if self.needs_loss and not callable(getattr(model, "reconstruction_loss", None)):
            raise ConfigError(
                f"map '{self.name}' needs a model with reconstruction_loss(recon, x); "
                "this model has none"
            )

    @abstractmethod
    def compute(self, cache: ForwardCache) -> Tensor:
        """(B, H, W) maps of ``cache.images``; the model is already in eval mode."""

    def __call__(self, model: nn.Module, images: Tensor) -> Tensor:
        """This method's (B, H, W) maps of ``images`` (a batch of its own)."""
        return compute_maps(model, images, [self])[self.label]


def _check_images(model: nn.Module, images: Tensor) -> None:
    expected = getattr(model, "input_shape", None)
    if images.dim() != 4 or (expected is not None and tuple(images.shape[1:]) != tuple(expected)):
        want = f"(B, {', '.join(map(str, expected))})" if expected else "(B, C, H, W)"
        raise ConfigError(
            f"images of shape {tuple(images.shape)} do not fit the model, which expects {want}; "
            "resize the images or add the batch dimension"
        )


def compute_maps(
    model: nn.Module, images: Tensor, methods: Sequence[AnomalyMap]
) -> dict[str, Tensor]:
    """Every method's (B, H, W) maps of one batch, keyed by label, from one shared forward pass.

    Maps are detached and lie on the device of ``images`` (where ``model`` must be).
    """
    if not methods:
        raise ConfigError("no anomaly maps asked for; name at least one (--maps)")
    labels = [m.label for m in methods]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ConfigError(f"anomaly map {', '.join(repeated)} asked for twice; name it once")
    _check_images(model, images)
    for method in methods:
        method.check(model)
    terms: set[GradientTerm] = set()
    for method in methods:
        terms |= method.input_gradients
    cache = ForwardCache(model, images, terms)
    size = (images.shape[0], images.shape[-2], images.shape[-1])
    maps = {}
    with eval_mode(model):
        for method in methods:
            out = method.compute(cache).detach()
            expected = size[:1] if method.native_resolution else size
            if tuple(out.shape[: len(expected)]) != expected or out.dim() != 3:
                raise RuntimeError(f"map '{method.label}' gave {tuple(out.shape)}, not {size}")
            maps[method.label] = out
    return maps
