"""Grad-CAM attention maps on a VAE's latent space (Liu et al., CVPR 2020, Eq. 1-4).

Works on any ``nn.Module`` with ``encode(x) -> (mu, logvar)`` and a named feature layer. All
methods share one recipe: forward once while capturing the layer output ``A``; get channel
weights ``alpha`` (Eq. 1) for one or more latent directions; combine ``act(sum_k alpha_k A_k)``
(Eq. 2); optionally upsample to the input size and min-max normalise each map.

* ``per_dimension``: one map per latent dimension ``M^i`` -> (B, D, H, W).
* ``method1``: the mean of the per-dimension maps (Eq. 3) -> (B, H, W).
* ``method2``: anomaly attention from ``sum(mu)`` -> (B, H, W), optional gradient RMS
  normalisation as in the authors' code.
* ``normal_difference``: the Eq. 4 variant against pooled training statistics -> (B, H, W).

No side effects: gradients are taken with ``torch.autograd.grad`` w.r.t. the captured activation
only, so parameter ``.grad`` is never touched; hooks are removed after each call; the model's
train/eval flags are restored. With ``differentiable=True`` the maps stay in the autograd graph
(for losses on maps such as the AD loss); otherwise they are detached and no graph is kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaecam.attention.activations import get_activation
from vaecam.attention.channel_gradients import (
    find_linear_head,
    generic_channel_weights,
    grad_outputs_for,
    linear_head_channel_weights,
)
from vaecam.attention.hooks import LayerCapture, resolve_layer
from vaecam.attention.latent_stats import LatentStats
from vaecam.errors import ConfigError

GradNorm = Literal["none", "rms-batch", "rms-image"]
Method = Literal["1", "2", "normal-difference"]
GRAD_NORMS = ("none", "rms-batch", "rms-image")
METHODS = ("1", "2", "normal-difference")


class _LinearCapture:
    """Record the input and output of the fast-path Linear during the same forward pass."""

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


@contextmanager
def _model_mode(model: nn.Module, eval_mode: bool) -> Iterator[None]:
    """Put ``model`` in eval mode (if asked) and restore every sub-module's flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    if eval_mode:
        model.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


class AttentionExplainer:
    """Attention maps for one model and one layer.

    Args:
        model: any module with ``encode(x) -> (mu, logvar)``.
        layer: dotted name of the feature layer, e.g. ``"encoder.2"``.
        activation: ``relu`` (paper) | ``abs`` (authors' code) | ``sigmoid`` | ``none``.
        upsample: bilinear upsampling of the maps to the input's height and width.
        normalize: per-map min-max normalisation to [0, 1]. Off by default: it rescales each
            image's map independently, which distorts pixel AUROC across images.
        fast_path: ``auto`` uses the exact Linear-head shortcut when the structure allows it
            and more than one latent direction is asked for (per-dimension maps, method 1);
            ``off`` always uses batched vector-Jacobian products.
        eval_mode: run the encoder in eval mode (restored afterwards).
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str,
        activation: str = "relu",
        upsample: bool = True,
        normalize: bool = False,
        fast_path: Literal["auto", "off"] = "auto",
        eval_mode: bool = True,
    ):
        if not callable(getattr(model, "encode", None)):
            raise ConfigError("the model has no encode(x) -> (mu, logvar) method")
        if fast_path not in ("auto", "off"):
            raise ConfigError(f"fast_path must be 'auto' or 'off', not '{fast_path}'")
        self.model = model
        self.layer_name = layer
        self.layer = resolve_layer(model, layer)
        self.activation_name = activation
        self.activation = get_activation(activation)
        self.upsample = upsample
        self.normalize = normalize
        self.fast_path = fast_path
        self.eval_mode = eval_mode

    # ----------------------------------------------------------------------------- public API
    def per_dimension(
        self, x: Tensor, dims: Sequence[int] | None = None, differentiable: bool = False
    ) -> Tensor:
        """Maps ``M^i`` (Eq. 2) of the selected latent dims (default all): (B, dims, H, W)."""
        return self._maps(x, self._unit_directions(dims), differentiable)

    def method1(
        self, x: Tensor, dims: Sequence[int] | None = None, differentiable: bool = False
    ) -> Tensor:
        """Mean of the per-dimension maps (Eq. 3): (B, H, W)."""
        return self._maps(x, self._unit_directions(dims), differentiable, reduce_mean=True)[:, 0]

    def method2(
        self, x: Tensor, grad_norm: GradNorm = "none", differentiable: bool = False
    ) -> Tensor:
        """Anomaly attention from ``sum(mu)``: (B, H, W).

        ``grad_norm`` divides the gradient by its root-mean-square before pooling, as the
        authors' code does: ``rms-batch`` over the whole batch (their code; maps then depend on
        the batch), ``rms-image`` per image.
        """
        if grad_norm not in GRAD_NORMS:
            choices = ", ".join(GRAD_NORMS)
            raise ConfigError(f"grad_norm must be one of {choices}, not '{grad_norm}'")
        ones = torch.ones(1, self._latent_dim(), dtype=x.dtype)
        return self._maps(x, ones, differentiable, grad_norm=grad_norm)[:, 0]

    def normal_difference(
        self,
        x: Tensor,
        stats: LatentStats,
        sample: bool = False,
        generator: torch.Generator | None = None,
        differentiable: bool = False,
    ) -> Tensor:
        """Eq. 4 variant: attention of the difference to the pooled normal posterior, (B, H, W).

        The difference ``q(z|y) - q(z|x)`` is ``N(mu_y - mu_x, sigma_x^2 + sigma_y^2)``. vaecam
        backpropagates the score ``s = 1/2 sum_i d_i^2 / (sigma_x,i^2 + sigma_y,i^2)`` (how far
        the difference is from zero, in its own standard deviations) with ``d = mu_y - mu_x``, or
        with ``d`` drawn from the difference distribution when ``sample=True``. Its gradient
        w.r.t. ``mu_y`` (variances held fixed) is the direction ``d / (sigma_x^2 + sigma_y^2)``.
        """
        with torch.no_grad(), _model_mode(self.model, self.eval_mode):
            mu, logvar = self.model.encode(self._check_input(x))
        mean = stats.mean.to(mu.device, torch.float32)
        var = stats.var.to(mu.device, torch.float32) + logvar.float().exp()
        d = mu.float() - mean
        if sample:
            noise = torch.randn(d.shape, generator=generator, dtype=d.dtype, device="cpu")
            d = d + noise.to(d.device) * var.sqrt()
        directions = (d / var).unsqueeze(1)  # (B, 1, D)
        return self._maps(x, directions, differentiable)[:, 0]

    def explain(self, x: Tensor, method: Method = "1", **kwargs: object) -> Tensor:
        """Dispatch by method name: ``1``, ``2`` or ``normal-difference``; (B, H, W)."""
        method = str(method)  # type: ignore[assignment]
        if method == "1":
            return self.method1(x, **kwargs)  # type: ignore[arg-type]
        if method == "2":
            return self.method2(x, **kwargs)  # type: ignore[arg-type]
        if method == "normal-difference":
            return self.normal_difference(x, **kwargs)  # type: ignore[arg-type]
        raise ConfigError(f"unknown method '{method}'; choose one of: {', '.join(METHODS)}")

    # ------------------------------------------------------------------------------ internals
    def _latent_dim(self) -> int:
        dim = getattr(self.model, "latent_dim", None)
        if dim is None:
            raise ConfigError("the model has no latent_dim attribute; pass dims explicitly")
        return int(dim)

    def _unit_directions(self, dims: Sequence[int] | None) -> Tensor:
        eye = torch.eye(self._latent_dim())
        if dims is None:
            return eye
        dims = list(dims)
        bad = [d for d in dims if not 0 <= d < eye.shape[0]]
        if bad or not dims:
            raise ConfigError(f"latent dims {bad or dims} out of range 0..{eye.shape[0] - 1}")
        return eye[dims]

    def _check_input(self, x: Tensor) -> Tensor:
        expected = getattr(self.model, "input_shape", None)
        if x.dim() != 4 or (expected is not None and tuple(x.shape[1:]) != tuple(expected)):
            want = f"(B, {', '.join(map(str, expected))})" if expected else "(B, C, H, W)"
            raise ConfigError(
                f"input of shape {tuple(x.shape)} does not fit the model, which expects {want}; "
                "resize the images or add the batch dimension"
            )
        return x

    def _maps(
        self,
        x: Tensor,
        directions: Tensor,
        differentiable: bool,
        reduce_mean: bool = False,
        grad_norm: GradNorm = "none",
    ) -> Tensor:
        """Forward once, take channel weights for ``directions``, build the maps."""
        x = self._check_input(x)
        with ExitStack() as stack:
            stack.enter_context(_model_mode(self.model, self.eval_mode))
            stack.enter_context(torch.enable_grad())
            # Detected after the mode switch: eval-only pointwise modules depend on it.
            head = None
            # One direction (method 2, Eq. 4) is cheaper as one plain backward.
            if self.fast_path == "auto" and grad_norm == "none" and directions.shape[-2] > 1:
                head = find_linear_head(self.model, self.layer_name)
            capture = stack.enter_context(
                LayerCapture(self.layer, self.layer_name, detach=not differentiable)
            )
            linear = stack.enter_context(_LinearCapture(head)) if head is not None else None
            mu, _ = self.model.encode(x)
            act = capture.activation
            alpha = self._channel_weights(mu, act, directions, linear, grad_norm, differentiable)
        maps = torch.einsum("brk,bkhw->brhw", alpha.float(), act.float())
        maps = self.activation(maps)
        if reduce_mean:
            maps = maps.mean(dim=1, keepdim=True)
        if self.upsample:
            maps = F.interpolate(maps, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if self.normalize:
            lo = maps.amin(dim=(-2, -1), keepdim=True)
            hi = maps.amax(dim=(-2, -1), keepdim=True)
            maps = (maps - lo) / (hi - lo).clamp_min(1e-12)
        return maps if differentiable else maps.detach()

    def _channel_weights(
        self,
        mu: Tensor,
        act: Tensor,
        directions: Tensor,
        linear: _LinearCapture | None,
        grad_norm: GradNorm,
        differentiable: bool,
    ) -> Tensor:
        if linear is not None and linear.input is not None and linear.output is not None:
            return linear_head_channel_weights(
                mu, act, linear.input, linear.output, linear.linear, directions, differentiable
            )
        if grad_norm == "none":
            return generic_channel_weights(mu, act, directions, differentiable)
        # Gradient normalisation needs the full gradient: one direction, one backward.
        (grads,) = torch.autograd.grad(
            mu, act, grad_outputs_for(directions, mu)[0], create_graph=differentiable
        )
        dims = tuple(range(grads.dim())) if grad_norm == "rms-batch" else (1, 2, 3)
        rms = grads.pow(2).mean(dim=dims, keepdim=True).sqrt() + 1e-5
        return (grads / rms).mean(dim=(-2, -1)).unsqueeze(1)


def explain(
    model: nn.Module,
    x: Tensor,
    layer: str,
    method: Method = "1",
    activation: str = "relu",
    **options: object,
) -> Tensor:
    """One-call attention maps: ``explain(vae, images, "encoder.2", method="1")`` -> (B, H, W).

    ``options`` are :class:`AttentionExplainer` settings (``upsample``, ``normalize``,
    ``fast_path``, ``eval_mode``) and method arguments (``grad_norm``, ``stats``, ...).
    """
    ctor_keys = {"upsample", "normalize", "fast_path", "eval_mode"}
    ctor = {k: v for k, v in options.items() if k in ctor_keys}
    call = {k: v for k, v in options.items() if k not in ctor_keys}
    explainer = AttentionExplainer(model, layer, activation=activation, **ctor)  # type: ignore[arg-type]
    return explainer.explain(x, method, **call)
