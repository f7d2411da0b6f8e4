"""Encoder health: how much of each encoder layer is alive on a fixed probe of images.

A rectified unit that is zero on every input is dead: it passes no gradient, so it does not
recover, and every layer after it sees a constant. When the wide hidden layer of a VAE encoder
dies, ``mu`` stops depending on the input before the KL term has any say; the active-units
count (:mod:`vaecam.metrics.latent`) sees that only later, as a collapsed latent.

A *unit* is a channel of a convolution's output or a feature of a Linear output, read after its
activation (a forward hook on the activation module). It is *alive* when it is positive on at
least one probe image (anywhere in the channel): for ReLU exactly "non-zero"; for LeakyReLU,
ELU, GELU and the like, "reaches the positive side". A hooked module that is not a rectifier
(a layer without activation) counts outputs ``!= 0``. The *spread* of a layer is the mean over
its units of the standard deviation across probe images of the unit's value (a channel's value
on an image: its mean over positions).

Layers are named after the Conv/Linear module that makes their units (``encoder.7``, the
hidden Linear of the UCSD encoder), skipping normalisation and dropout between the two; a
rectifier that runs several times in one forward pass (a ResNet block's ReLU) keeps its own
name, with ``/call2``, ``/call3``... for the later calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.dropout import _DropoutNd

from vaecam.metrics.latent import posterior_summary
from vaecam.models.base import eval_mode

# Rectifiers: a unit after one of them is alive where it is positive.
RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU,
              nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish)
# Modules between a layer and its activation that keep the unit (looked through when naming).
_PASS_THROUGH = (_NormBase, nn.GroupNorm, nn.LayerNorm, _DropoutNd, nn.Identity)
ALIVE_WARNING = 0.2  # a layer with fewer alive units than this is reported by ``vaecam train``
DEAD_LAYER_ADVICE = ("a dead unit passes no gradient and does not recover: try a smaller --lr or "
                     "an encoder with normalisation layers (BatchNorm + LeakyReLU)")
COLLAPSE_ADVICE = ("try --kl-warmup-epochs, --free-bits or a larger --recon-scale (a smaller "
                   "KL weight)")


@dataclass(frozen=True)
class LayerHealth:
    """One encoder layer on the probe: the fraction of its units alive, their spread across
    images, how many units it has and the kind of layer that makes them (``Linear``)."""

    alive_fraction: float
    spread: float
    units: int
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _UnitStats:
    """Per-image statistics of one hooked output: alive flags and values of every unit."""

    def __init__(self, rectified: bool):
        self.rectified = rectified
        self.alive: list[Tensor] = []  # (batch, units) bool: alive somewhere on that image
        self.values: list[Tensor] = []  # (batch, units): the unit's mean over positions

    def add(self, output: Tensor) -> None:
        flat = output.detach().flatten(2) if output.dim() > 2 else output.detach()[..., None]
        live = flat > 0 if self.rectified else flat != 0
        self.alive.append(live.any(dim=2).cpu())
        self.values.append(flat.double().mean(dim=2).cpu())

    def result(self, kind: str) -> LayerHealth:
        alive = torch.cat(self.alive).any(dim=0)
        values = torch.cat(self.values)
        return LayerHealth(alive_fraction=float(alive.double().mean()),
                           spread=float(values.std(dim=0).mean()), units=int(alive.numel()),
                           kind=kind)


def _producer(model: nn.Module, name: str) -> tuple[str, nn.Module] | None:
    """The Conv/Linear that feeds the activation ``name`` in its parent's child order (through
    normalisation and dropout), or None."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    children = list(parent.named_children())
    position = [n for n, _ in children].index(child)
    for sibling_name, sibling in reversed(children[:position]):
        if isinstance(sibling, (_ConvNd, nn.Linear)):
            return (f"{parent_name}.{sibling_name}" if parent_name else sibling_name), sibling
        if not isinstance(sibling, _PASS_THROUGH):
            return None
    return None


def _hook_points(model: nn.Module, layers: Iterable[str] | None) -> dict[str, nn.Module]:
    """The modules to hook: the named ``layers``, or every rectifier of the model (only those
    that run in ``encode`` give results)."""
    if layers is None:
        return {n: m for n, m in model.named_modules() if isinstance(m, RECTIFIERS)}
    modules = dict(model.named_modules())
    layers = list(layers)
    unknown = [n for n in layers if n not in modules]
    if unknown:
        raise ValueError(f"the model has no layer {unknown[0]!r}")
    return {n: modules[n] for n in layers}


def _encode_with_hooks(model: nn.Module, probe: Tensor, layers: Iterable[str] | None,
                       batch_size: int) -> tuple[Tensor, Tensor, dict[str, LayerHealth]]:
    """One pass of ``model.encode`` over ``probe``: (mu, logvar, health per layer)."""
    if probe.shape[0] < 2:
        raise ValueError("encoder health needs a probe of at least 2 images")
    points = _hook_points(model, layers)
    calls: dict[str, list[_UnitStats]] = {}
    seen_in_batch: dict[str, int] = {}

    def hook_for(name: str, module: nn.Module):
        def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> None:
            k = seen_in_batch.get(name, 0)
            seen_in_batch[name] = k + 1
            per_call = calls.setdefault(name, [])
            if k == len(per_call):
                per_call.append(_UnitStats(isinstance(module, RECTIFIERS)))
            per_call[k].add(output)
        return hook

    handles = [m.register_forward_hook(hook_for(n, m)) for n, m in points.items()]
    mus, logvars = [], []
    try:
        with torch.no_grad(), eval_mode(model):
            for start in range(0, probe.shape[0], batch_size):
                seen_in_batch.clear()
                mu, logvar = model.encode(probe[start : start + batch_size])
                mus.append(mu)
                logvars.append(logvar)
    finally:
        for handle in handles:
            handle.remove()
    health: dict[str, LayerHealth] = {}
    for name, per_call in calls.items():
        module = points[name]
        producer = _producer(model, name) if layers is None and len(per_call) == 1 else None
        if producer is not None:
            health[producer[0]] = per_call[0].result(type(producer[1]).__name__)
            continue
        for k, stats in enumerate(per_call, 1):
            health[name if k == 1 else f"{name}/call{k}"] = stats.result(type(module).__name__)
    return torch.cat(mus), torch.cat(logvars), health


def layer_health(model: nn.Module, probe: Tensor, layers: Iterable[str] | None = None,
                 batch_size: int = 64) -> dict[str, LayerHealth]:
    """Health of every encoder layer of ``model`` on the images ``probe`` (N >= 2), in
    forward order.

    ``layers`` (module names) hooks those modules instead of every rectifier, named as given.
    The model runs ``encode`` in eval mode without gradients; its modes are restored and the
    hooks removed afterwards.
    """
    return _encode_with_hooks(model, probe, layers, batch_size)[2]


def least_alive(health: Mapping[str, LayerHealth]) -> tuple[str, LayerHealth] | None:
    """The layer with the smallest alive fraction (the first in forward order on a tie)."""
    if not health:
        return None
    name = min(health, key=lambda n: health[n].alive_fraction)
    return name, health[name]


def model_health(model: nn.Module, images: Tensor) -> dict[str, Any]:
    """Latent and encoder health of ``model`` on ``images`` in one pass: the fields of
    :func:`vaecam.metrics.latent.latent_summary`, ``hidden_alive`` and ``hidden_layer`` (the
    least-alive layer, None for an encoder without rectifiers) and ``encoder_layers`` (every
    layer's :class:`LayerHealth` as a dict)."""
    mu, logvar, health = _encode_with_hooks(model, images, None, 64)
    worst = least_alive(health)
    return {
        **posterior_summary(mu, logvar),
        "hidden_alive": None if worst is None else worst[1].alive_fraction,
        "hidden_layer": None if worst is None else worst[0],
        "hidden_kind": None if worst is None else worst[1].kind,
        "encoder_layers": {name: h.to_dict() for name, h in health.items()},
    }


def is_unhealthy(record: Mapping[str, Any]) -> tuple[bool, bool]:
    """(a layer under :data:`ALIVE_WARNING` alive, no active latent unit) of a
    :func:`model_health` record."""
    alive = record.get("hidden_alive")
    return alive is not None and alive < ALIVE_WARNING, record.get("active_units") == 0


def health_warning(records: Mapping[Any, Mapping[str, Any] | None]) -> str:
    """One line on the unhealthy seeds of ``records`` (seed -> :func:`model_health` record):
    each one's least-alive layer and active units, and what to try; empty when all recorded
    models are healthy."""
    parts, any_dead = [], False
    for seed, record in records.items():
        if record is None:
            continue
        dead, collapsed = is_unhealthy(record)
        if not (dead or collapsed):
            continue
        any_dead |= dead
        layer = ("no rectified encoder layer" if record.get("hidden_alive") is None else
                 f"encoder layer {record['hidden_layer']} ({record['hidden_kind']}) "
                 f"{record['hidden_alive']:.0%} alive")
        parts.append(f"seed {seed}: {layer}, {record['active_units']} of "
                     f"{record['latent_dim']} latent units active (KL {record['kl']:.2g} nats)")
    if not parts:
        return ""
    return (f"{'; '.join(parts)} at the end of training (a layer under {ALIVE_WARNING:.0%} alive "
            "or no active unit leaves the attention maps little or nothing to explain); "
            f"{DEAD_LAYER_ADVICE if any_dead else COLLAPSE_ADVICE}")
