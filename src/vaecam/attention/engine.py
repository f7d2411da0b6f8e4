"""Grad-CAM attention maps on a VAE's latent space (Liu et al., CVPR 2020, Eq. 1-4).

Works on any ``nn.Module`` and any encoder: ``encode(x)`` (or ``encode=`` a callable) may return
``(mu, logvar)``, ``mu``, a dict or output object (pythae, diffusers ``latent_dist``) or a
``torch.distributions`` object (see :mod:`vaecam.attention.encoding`); the latent size is read
from ``mu``, a spatial latent is flattened (:class:`LatentLayout` names its units). All methods
share one recipe: forward once while capturing the output ``A`` of each explained layer; get channel
weights ``alpha`` (Eq. 1) for one or more latent directions; combine ``act(sum_k alpha_k A_k)``
(Eq. 2); optionally upsample to the input size and min-max normalise each map.

* ``per_dimension``: one map per latent dimension ``M^i`` -> (B, D, H, W).
  Directions are processed ``chunk_size`` at a time, so memory stays bounded for large latents;
  maps have the activations' dtype (float64 stays float64, lower precisions give float32).
* ``method1``: the mean of the per-dimension maps (Eq. 3) -> (B, H, W).
* ``target_map``: the map of any scalar function of the latent code ``f(mu) -> (B,)`` (see
  :mod:`vaecam.attention.targets`) -> (B, H, W), with optional gradient RMS normalisation as in
  the authors' code.
* ``method2``: ``target_map`` of ``sum(mu)`` (the authors' anomaly attention).
* ``normal_difference``: ``target_map`` of the Eq. 4 score against pooled training statistics.

``layer`` is one layer (dotted name or module): every method returns a tensor. A list of layers
is explained from one forward pass and every method returns a dict ``{dotted name: tensor}``
in the order given.

No side effects: gradients are taken with ``torch.autograd.grad`` w.r.t. the captured activations
only, so parameter ``.grad`` is never touched; hooks are removed after each call; the model's
train/eval flags are restored. With ``differentiable=True`` the maps stay in the autograd graph
(for losses on maps such as the AD loss); otherwise they are detached and no graph is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Generic, Literal, TypeVar, cast, overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaecam.attention.activations import check_activation_order, get_activation
from vaecam.attention.channel_gradients import (
    find_linear_head,
    generic_channel_weights,
    layer_gradients,
    linear_head_channel_weights,
    rows_per_chunk,
    uses_batch_statistics,
)
from vaecam.attention.encoding import Posterior, read_posterior
from vaecam.attention.fast_path import (
    check_direction,
    shared_verdicts,
    shortcut_agrees,
    structure_key,
)
from vaecam.attention.hooks import LayerCapture, LayerRef, resolve_layers
from vaecam.attention.latent_layout import LatentLayout
from vaecam.attention.latent_stats import LatentStats
from vaecam.attention.targets import NormalDifference, PosteriorTarget, SumOfMeans, Target
from vaecam.errors import ConfigError
from vaecam.models.base import eval_mode

GradNorm = Literal["none", "rms-batch", "rms-image"]
Method = Literal["1", "2", "normal-difference", "target"]
ActivationOrder = Literal["before", "after-upsample"]
FastPath = Literal["auto", "off"]
Encode = Callable[[Tensor], object]
GRAD_NORMS = ("none", "rms-batch", "rms-image")
METHODS = ("1", "2", "normal-difference")
MapsT = TypeVar("MapsT", Tensor, dict[str, Tensor])
Directions = Callable[[Posterior], Tensor]


class _LinearCapture:
    """Record the input and output of a fast-path Linear during the same forward pass."""

    def __init__(self, linear: nn.Linear):
        self.linear = linear
        self.input: Tensor | None = None
        self.output: Tensor | None = None

    def _hook(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
        self.input = inputs[0]
        self.output = output
        return output.clone()

    def __enter__(self) -> _LinearCapture:
        self._handle = self.linear.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()


def _unit_directions(dims: Sequence[int] | None) -> Directions:
    """Rows of the identity for ``dims`` (default all), built once ``mu`` gives D."""

    def directions(posterior: Posterior) -> Tensor:
        eye = torch.eye(posterior.mu.shape[1])
        if dims is None:
            return eye
        chosen = list(dims)
        bad = [d for d in chosen if not 0 <= d < eye.shape[0]]
        if bad or not chosen:
            raise ConfigError(f"latent dims {bad or chosen} out of range 0..{eye.shape[0] - 1}")
        return eye[chosen]

    return directions


def _target_directions(target: Target | PosteriorTarget, differentiable: bool) -> Directions:
    """Per-image directions (B, 1, D): the gradient of ``target`` w.r.t. each image's ``mu``.

    The target's values are summed for one backward; each image's gradient is its own since
    images do not interact in eval mode.
    """

    def directions(posterior: Posterior) -> Tensor:
        mu = posterior.mu
        if isinstance(target, PosteriorTarget):
            if posterior.var is None:
                raise ConfigError("this target needs the posterior variance; encode must return "
                                  "(mu, logvar), a dict with 'logvar' or a distribution")
            value = target(mu, posterior.var.detach())
        else:
            value = target(mu)
        if not isinstance(value, Tensor) or value.shape != mu.shape[:1]:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ConfigError(f"a target must return one value per image, shape ({len(mu)},), "
                              f"not {got}; reduce over the latent dims inside the target")
        grad = None
        if value.requires_grad:
            (grad,) = torch.autograd.grad(
                value.sum(), mu, create_graph=differentiable, allow_unused=True
            )
        if grad is None:
            raise ConfigError("the target does not depend on mu; give a function of the code")
        return grad.unsqueeze(1)

    return directions


def _with_check_row(directions: Tensor, check: Tensor, batch: int) -> Tensor:
    """``directions`` ((R, D) or (B, R, D)) with the check direction appended as row R."""
    check = check.to(directions.device, directions.dtype)
    if directions.dim() == 2:
        return torch.cat([directions, check[None]])
    return torch.cat([directions, check.expand(batch, 1, -1)], dim=1)


def _resize(maps: Tensor, size: torch.Size) -> Tensor:
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


class AttentionExplainer(Generic[MapsT]):
    """Attention maps for one model and one or several layers.

    Args:
        model: the VAE (or any module holding the layers).
        layer: the feature layer, by dotted name (``"encoder.2"``) or as the module; or a list
            of them, explained from one forward pass (methods then return dicts by name).
        activation: ``relu`` (paper) | ``abs`` (authors' code) | ``sigmoid`` | ``none``.
        upsample: bilinear upsampling of the maps to the input's height and width.
        normalize: per-map min-max normalisation to [0, 1]. Off by default: it rescales each
            image's map independently, which distorts pixel AUROC across images.
        fast_path: ``auto`` uses the exact Linear-head shortcut for several latent directions
            (per-dimension maps, method 1) where the structure allows it and a one-time check
            against the generic path agrees; ``off`` always uses batched vector-Jacobian
            products.
        eval_mode: run the encoder in eval mode (restored afterwards).
        activation_order: ``before`` upsampling (vaecam, Eq. 2 at the layer's resolution) or
            ``after-upsample`` (the authors' code); the same when ``upsample`` is off.
        encode: ``x -> posterior`` to use instead of ``model.encode``.
        chunk_size: latent directions (or, in forward mode, channels) per gradient pass; None
            picks it so one chunk's gradients take about 128 MiB. Smaller saves memory, larger
            can be faster.
    """

    @overload
    def __init__(
        self: AttentionExplainer[Tensor],
        model: nn.Module,
        layer: LayerRef,
        activation: str = ...,
        upsample: bool = ...,
        normalize: bool = ...,
        fast_path: FastPath = ...,
        eval_mode: bool = ...,
        activation_order: ActivationOrder = ...,
        encode: Encode | None = ...,
        chunk_size: int | None = ...,
    ) -> None: ...

    @overload
    def __init__(
        self: AttentionExplainer[dict[str, Tensor]],
        model: nn.Module,
        layer: Sequence[LayerRef],
        activation: str = ...,
        upsample: bool = ...,
        normalize: bool = ...,
        fast_path: FastPath = ...,
        eval_mode: bool = ...,
        activation_order: ActivationOrder = ...,
        encode: Encode | None = ...,
        chunk_size: int | None = ...,
    ) -> None: ...

    def __init__(
        self,
        model: nn.Module,
        layer: LayerRef | Sequence[LayerRef],
        activation: str = "relu",
        upsample: bool = True,
        normalize: bool = False,
        fast_path: FastPath = "auto",
        eval_mode: bool = True,
        activation_order: ActivationOrder = "before",
        encode: Encode | None = None,
        chunk_size: int | None = None,
    ):
        own_encode = getattr(model, "encode", None)
        if not callable(encode if encode is not None else own_encode):
            raise ConfigError("the model has no encode(x) method; pass encode=callable returning "
                              "(mu, logvar), mu, a dict with 'mu' or a distribution")
        if fast_path not in ("auto", "off"):
            raise ConfigError(f"fast_path must be 'auto' or 'off', not '{fast_path}'")
        self.model = model
        self.layers = resolve_layers(model, layer)
        self.single_layer = isinstance(layer, (str, nn.Module))
        self.layer_name, self.layer = next(iter(self.layers.items()))  # the first layer
        self.activation_name = activation
        self.activation = get_activation(activation)
        self.activation_order = check_activation_order(activation_order)
        self.upsample = upsample
        self.normalize = normalize
        self.fast_path = fast_path
        self.eval_mode = eval_mode
        if chunk_size is not None:
            rows_per_chunk(chunk_size, 1)  # a bad size fails here, not mid-computation
        self.chunk_size = chunk_size
        self._encode = cast(Encode, encode if encode is not None else own_encode)
        # Fast-path verdicts hold for the model's own encode; a custom one gets its own record.
        self._verdicts = shared_verdicts(model) if encode is None else {}

    # ----------------------------------------------------------------------------- public API
    def latent_layout(self, x: Tensor) -> LatentLayout:
        """The per-image shape of the latent code for inputs like ``x`` (one forward, no grad).

        Flat unit ``i`` of a spatial latent is ``layout.position(i)``; pass
        ``layout.units(channel=c)`` or ``[layout.index(c, y, x)]`` as ``dims`` to explain a
        channel or one position.
        """
        with torch.no_grad(), eval_mode(self.model, self.eval_mode):
            layout = read_posterior(self._encode(self._check_input(x)[:1])).layout
        assert layout is not None
        return layout

    def per_dimension(
        self, x: Tensor, dims: Sequence[int] | None = None, differentiable: bool = False
    ) -> MapsT:
        """Maps ``M^i`` (Eq. 2) of the selected latent dims (default all): (B, dims, H, W)."""
        return self._result(self._maps(x, _unit_directions(dims), differentiable, shortcut=True))

    def method1(
        self, x: Tensor, dims: Sequence[int] | None = None, differentiable: bool = False
    ) -> MapsT:
        """Mean of the per-dimension maps (Eq. 3): (B, H, W)."""
        maps = self._maps(x, _unit_directions(dims), differentiable, shortcut=True,
                          reduce_mean=True)
        return self._result({name: m[:, 0] for name, m in maps.items()})

    def target_map(
        self,
        x: Tensor,
        target: Target | PosteriorTarget,
        grad_norm: GradNorm = "none",
        differentiable: bool = False,
    ) -> MapsT:
        """Attention of a scalar function of the latent code, ``target(mu) -> (B,)``: (B, H, W).

        ``grad_norm`` divides the gradient by its root-mean-square before pooling, as the
        authors' code does: ``rms-batch`` over the whole batch (their code; maps then depend on
        the batch), ``rms-image`` per image.
        """
        if grad_norm not in GRAD_NORMS:
            choices = ", ".join(GRAD_NORMS)
            raise ConfigError(f"grad_norm must be one of {choices}, not '{grad_norm}'")
        maps = self._maps(x, _target_directions(target, differentiable), differentiable,
                          grad_norm=grad_norm)
        return self._result({name: m[:, 0] for name, m in maps.items()})

    def method2(
        self, x: Tensor, grad_norm: GradNorm = "none", differentiable: bool = False
    ) -> MapsT:
        """Anomaly attention from ``sum(mu)`` (:class:`SumOfMeans`): (B, H, W)."""
        return self.target_map(x, SumOfMeans(), grad_norm, differentiable)

    def normal_difference(
        self,
        x: Tensor,
        stats: LatentStats,
        sample: bool = False,
        generator: torch.Generator | None = None,
        differentiable: bool = False,
    ) -> MapsT:
        """Eq. 4 variant against the pooled normal posterior (:class:`NormalDifference`)."""
        target = NormalDifference(stats, sample=sample, generator=generator)
        return self.target_map(x, target, differentiable=differentiable)

    def explain(self, x: Tensor, method: Method = "1", **kwargs: object) -> MapsT:
        """Dispatch by method name: ``1``, ``2``, ``normal-difference`` or ``target``."""
        method = str(method)  # type: ignore[assignment]
        if method == "1":
            return self.method1(x, **kwargs)  # type: ignore[arg-type]
        if method == "2":
            return self.method2(x, **kwargs)  # type: ignore[arg-type]
        if method == "normal-difference":
            return self.normal_difference(x, **kwargs)  # type: ignore[arg-type]
        if method == "target":
            return self.target_map(x, **kwargs)  # type: ignore[arg-type]
        choices = ", ".join((*METHODS, "target"))
        raise ConfigError(f"unknown method '{method}'; choose one of: {choices}")

    # ------------------------------------------------------------------------------ internals
    def _check_input(self, x: Tensor) -> Tensor:
        expected = getattr(self.model, "input_shape", None)
        if x.dim() != 4 or (expected is not None and tuple(x.shape[1:]) != tuple(expected)):
            want = f"(B, {', '.join(map(str, expected))})" if expected else "(B, C, H, W)"
            raise ConfigError(
                f"input of shape {tuple(x.shape)} does not fit the model, which expects {want}; "
                "resize the images or add the batch dimension"
            )
        return x

    def _heads(self) -> dict[str, nn.Linear]:
        """Layers whose output reaches a Linear through pointwise ops in their Sequential."""
        if self.fast_path == "off" or uses_batch_statistics(self.model):
            return {}
        heads = {name: find_linear_head(self.model, name) for name in self.layers}
        return {name: head for name, head in heads.items() if head is not None}

    def _maps(
        self,
        x: Tensor,
        directions_for: Directions,
        differentiable: bool,
        shortcut: bool = False,
        reduce_mean: bool = False,
        grad_norm: GradNorm = "none",
    ) -> dict[str, Tensor]:
        """Forward once, take channel weights for the directions: (B, R or 1, H, W) per layer."""
        x = self._check_input(x)
        with ExitStack() as stack:
            stack.enter_context(eval_mode(self.model, self.eval_mode))
            stack.enter_context(torch.enable_grad())
            # After the mode switch: which modules act pointwise depends on it.
            heads = self._heads() if shortcut else {}
            capture = stack.enter_context(LayerCapture(self.layers, detach=not differentiable))
            linears = {
                linear: stack.enter_context(_LinearCapture(linear))
                for linear in dict.fromkeys(heads.values())
            }
            posterior = read_posterior(self._encode(x))
            activations = capture.activations
            if not posterior.mu.requires_grad:
                raise ConfigError(f"mu does not depend on layer(s) {', '.join(self.layers)}; "
                                  "choose layers that the encoder uses to compute mu")
            directions = directions_for(posterior)
            if grad_norm != "none":
                weights = self._normalized_weights(posterior.mu, activations, directions,
                                                   grad_norm, differentiable)
            else:
                shortcuts = {name: linears[head] for name, head in heads.items()}
                weights = self._channel_weights(posterior.mu, activations, directions, shortcuts,
                                                differentiable)
        return {
            name: self._combine(weights[name], act, x.shape[-2:], reduce_mean, differentiable)
            for name, act in activations.items()
        }

    def _result(self, maps: dict[str, Tensor]) -> MapsT:
        """The single layer's maps, or the dict of all layers' maps."""
        return cast(MapsT, maps[self.layer_name] if self.single_layer else maps)

    def _channel_weights(
        self,
        mu: Tensor,
        activations: dict[str, Tensor],
        directions: Tensor,
        shortcuts: dict[str, _LinearCapture],
        differentiable: bool,
    ) -> dict[str, Tensor]:
        """(B, R, C) per layer: through the checked shortcut where allowed, else generically."""
        weights: dict[str, Tensor] = {}
        if directions.shape[-2] > 1:  # one direction is cheaper as one plain backward
            structure = structure_key(self.model) if shortcuts else ()
            for name, linear in shortcuts.items():
                found = self._shortcut_weights(
                    name, mu, activations[name], directions, linear, structure, differentiable
                )
                if found is not None:
                    weights[name] = found
        rest = {name: act for name, act in activations.items() if name not in weights}
        if rest:
            weights.update(generic_channel_weights(mu, rest, directions, differentiable,
                                                   self.chunk_size))
        return weights

    def _shortcut_weights(
        self,
        name: str,
        mu: Tensor,
        activation: Tensor,
        directions: Tensor,
        linear: _LinearCapture,
        structure: tuple[object, ...],
        differentiable: bool,
    ) -> Tensor | None:
        """The shortcut's weights if its verdict for this structure is (or turns out) good."""
        head_input, head_output = linear.input, linear.output
        if head_input is None or head_output is None:  # encode() did not run the head
            return None

        def shortcut(rows: Tensor) -> Tensor:
            return linear_head_channel_weights(
                mu, activation, head_input, head_output, linear.linear, rows, differentiable,
                self.chunk_size,
            )

        key = (name, structure, tuple(activation.shape[1:]))
        verdict = self._verdicts.get(key)
        if verdict is not None:
            return shortcut(directions) if verdict else None
        check = check_direction(mu.shape[1])
        both = shortcut(_with_check_row(directions, check, mu.shape[0]))
        exact = generic_channel_weights(mu, {name: activation}, check[None], False)[name]
        verdict = shortcut_agrees(both[:, -1], exact[:, 0])
        if verdict is not None:
            self._verdicts[key] = verdict
        return both[:, :-1] if verdict else None

    @staticmethod
    def _normalized_weights(
        mu: Tensor,
        activations: dict[str, Tensor],
        directions: Tensor,
        grad_norm: GradNorm,
        differentiable: bool,
    ) -> dict[str, Tensor]:
        """Eq. 1 from the gradient divided by its RMS (one direction; one backward)."""
        weights = {}
        for name, g in layer_gradients(mu, activations, directions, differentiable).items():
            g = g[0]
            dims = tuple(range(g.dim())) if grad_norm == "rms-batch" else (1, 2, 3)
            rms = g.pow(2).mean(dim=dims, keepdim=True).sqrt() + 1e-5
            weights[name] = (g / rms).mean(dim=(-2, -1)).unsqueeze(1)
        return weights

    def _combine(
        self,
        alpha: Tensor,
        activation: Tensor,
        size: torch.Size,
        reduce_mean: bool,
        differentiable: bool,
    ) -> Tensor:
        """Eq. 2 (and Eq. 3 when ``reduce_mean``): (B, R or 1, H, W) maps from (B, R, C).

        For the mean, directions are combined a chunk at a time and summed, so the per-direction
        maps of a large latent never exist all at once.
        """
        dtype = torch.promote_types(activation.dtype, torch.float32)
        alpha, activation = alpha.to(dtype), activation.to(dtype)
        after = self.upsample and self.activation_order == "after-upsample"
        step = rows_per_chunk(self.chunk_size, activation[0].numel() * (4 if after else 1))
        parts = []
        for start in range(0, alpha.shape[1], step):
            signed = torch.einsum("brk,bkhw->brhw", alpha[:, start : start + step], activation)
            maps = self.activation(_resize(signed, size) if after else signed)
            parts.append(maps.sum(dim=1, keepdim=True) if reduce_mean else maps)
        if reduce_mean:
            maps = torch.stack(parts).sum(dim=0) / alpha.shape[1]
        else:
            maps = torch.cat(parts, dim=1)
        if self.upsample and not after:
            maps = _resize(maps, size)
        if self.normalize:
            lo = maps.amin(dim=(-2, -1), keepdim=True)
            hi = maps.amax(dim=(-2, -1), keepdim=True)
            maps = (maps - lo) / (hi - lo).clamp_min(1e-12)
        return maps if differentiable else maps.detach()


_CONSTRUCTOR_OPTIONS = (
    "upsample", "normalize", "fast_path", "eval_mode", "activation_order", "encode", "chunk_size"
)


def split_options(options: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """(:class:`AttentionExplainer` settings, method arguments) of one mixed options dict."""
    ctor = {k: v for k, v in options.items() if k in _CONSTRUCTOR_OPTIONS}
    return ctor, {k: v for k, v in options.items() if k not in _CONSTRUCTOR_OPTIONS}


def explain(
    model: nn.Module,
    x: Tensor,
    layer: LayerRef | Sequence[LayerRef],
    method: Method = "1",
    activation: str = "relu",
    **options: object,
) -> Tensor | dict[str, Tensor]:
    """One-call attention maps: ``explain(vae, images, "encoder.2", method="1")`` -> (B, H, W).

    ``options`` are :class:`AttentionExplainer` settings (``upsample``, ``normalize``,
    ``fast_path``, ``eval_mode``, ``activation_order``, ``encode``, ``chunk_size``) and method
    arguments (``grad_norm``, ``stats``, ``target``, ...). A list of layers gives a dict by layer
    name.
    """
    ctor, call = split_options(options)
    explainer = AttentionExplainer(model, layer, activation=activation, **ctor)  # type: ignore[arg-type, call-overload]
    return explainer.explain(x, method, **call)
