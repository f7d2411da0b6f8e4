"""Channel weights of Eq. 1: spatial means of d(w . mu)/dA for a set of latent directions w.

For direction ``w_r`` (a row of ``directions``) and channel ``k``:

    alpha[b, r, k] = 1/(h*w) * sum_{p,q} d (w_r . mu[b]) / d A[b, k, p, q]

Per-dimension maps use the unit vectors (``w_r = e_i``); a target ``f(mu)`` uses each image's own
gradient ``w_b = df/dmu_b`` (method 2: ``w = 1``). Two ways to compute it:

* :func:`generic_channel_weights` works for any encoder, in whichever mode needs fewer
  passes. Reverse mode: one vector-Jacobian product per direction, batched with
  ``is_grads_batched`` (one backward for a single direction). Forward mode, when the layer has
  at most half as many channels as there are directions (a large or spatial latent): Eq. 1 is
  ``alpha[b, :, k] = J_b 1_k / (h*w)``, the Jacobian of ``mu`` times the tangent that is 1 on
  channel ``k``, so one Jacobian-vector product per *channel* gives every direction at once.
  The products come from the existing graph by double backward (``J^T u`` is linear in a dummy
  ``u``; its vector-Jacobian product with a tangent ``t`` is ``J t``). Both modes process their
  rows in chunks so memory stays bounded (``chunk_size``, or automatically about 128 MiB of
  gradient per chunk).
* :func:`linear_head_channel_weights` is exact and much faster when the layer is followed by
  (pointwise ops ->) ``Flatten`` -> ``Linear`` inside an ``nn.Sequential`` and ``encode`` uses
  the layer output only through that chain (the engine checks it once, see
  :mod:`vaecam.attention.fast_path`). Only channel sums of the gradient are needed, so the
  Linear weight ``W`` (H1 x C*h*w) is contracted with the
  pointwise derivative mask per channel, ``V[b, j, k] = sum_p W[j, k, p] * mask[b, k, p]``, and
  combined with the Jacobian of the cheap rest of the chain, ``J[r, b, j] = d(w_r . mu)/du_j``:
  ``alpha = J . V / (h*w)``. That costs about one backward pass through the Linear instead of D.
  A channel-major copy of ``W`` is cached per Linear (refreshed when the weight changes), and on
  CPU ``V`` is written into a reused scratch buffer: a fresh tensor of that size costs more in
  page faults than the product itself. (So one Linear must not be explained from two threads at
  once.)
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vaecam.errors import ConfigError

# Modules whose Jacobian is diagonal (elementwise) whatever their mode.
_POINTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Identity,
)
# Modules that are elementwise only in eval mode (identity); BatchNorm, see _pointwise_here.
_POINTWISE_IN_EVAL = (nn.Dropout, nn.Dropout2d)
# Per fast-path Linear: (weight key, its channel-major copy), see _channel_major_weight.
_WEIGHT_CACHE: weakref.WeakKeyDictionary[nn.Linear, tuple[tuple[object, ...], Tensor]] = (
    weakref.WeakKeyDictionary()
)
# Per fast-path Linear on CPU: the scratch buffer that V is written into, see _v_buffer.
_V_SCRATCH: weakref.WeakKeyDictionary[nn.Linear, Tensor] = weakref.WeakKeyDictionary()
# Largest V kept as scratch between calls (elements; 256 MiB in float32).
_MAX_SCRATCH_NUMEL = 1 << 26
# Gradient elements per chunk of directions (or tangents) when no chunk size is given.
_CHUNK_ELEMENTS = 1 << 25
# Forward mode is chosen when channels * this factor <= directions: a Jacobian-vector product by
# double backward costs about twice a vector-Jacobian product.
_FORWARD_MODE_FACTOR = 2


def _pointwise_here(module: nn.Module) -> bool:
    """Whether ``module`` acts elementwise in its current mode.

    BatchNorm is a per-channel affine map only in eval mode *with* running statistics; without
    them (``track_running_stats=False``) it normalises with batch statistics even in eval mode.
    """
    if isinstance(module, _POINTWISE):
        return True
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return not module.training and module.running_mean is not None
    return isinstance(module, _POINTWISE_IN_EVAL) and not module.training


def find_linear_head(model: nn.Module, layer_name: str) -> nn.Linear | None:
    """The Linear of a ``pointwise -> Flatten -> Linear`` chain after ``layer_name``, or None.

    The layer must be a direct child of an ``nn.Sequential``; the children after it must be
    pointwise modules, then ``nn.Flatten()`` over all non-batch dims, then ``nn.Linear``. This
    is only the structure inside the Sequential: what ``encode`` does with the layer output
    elsewhere is invisible here, so the engine checks the shortcut before trusting it.
    """
    parent_name, _, child = layer_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if not isinstance(parent, nn.Sequential):
        return None
    names = [name for name, _ in parent.named_children()]
    if child not in names:
        return None
    following = list(parent.children())[names.index(child) + 1 :]
    for i, module in enumerate(following):
        if _pointwise_here(module):
            continue
        is_flatten = (
            isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1
        )
        if is_flatten and i + 1 < len(following) and isinstance(following[i + 1], nn.Linear):
            return following[i + 1]
        return None
    return None


def uses_batch_statistics(model: nn.Module) -> bool:
    """Whether a BatchNorm of ``model`` normalises with batch statistics (training mode, or no
    running statistics): images of a batch then interact, which rules the shortcut out."""
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or m.running_mean is None)
        for m in model.modules()
    )


def batched_vjp(
    output: Tensor, inputs: Sequence[Tensor], grad_outputs: Tensor, create_graph: bool
) -> list[Tensor | None]:
    """Vector-Jacobian products for each row of ``grad_outputs`` (R, *output.shape).

    One ``(R, *input.shape)`` tensor per input, None for an input ``output`` does not depend on.
    Uses one batched backward (vmap) and falls back to a loop where an operator has no batching
    rule.
    """
    grad = functools.partial(
        torch.autograd.grad, output, list(inputs), retain_graph=True, create_graph=create_graph,
        allow_unused=True,
    )
    if grad_outputs.shape[0] == 1:
        rows = [grad(grad_outputs[0])]
    else:
        try:
            # Expanded (stride-0) rows make the vmapped ops ~2x slower: contiguous() first.
            return list(grad(grad_outputs.contiguous(), is_grads_batched=True))
        except RuntimeError:
            rows = [grad(go) for go in grad_outputs]
    return [
        None if row[0] is None else torch.stack(row)
        for row in zip(*rows, strict=True)
    ]


def grad_outputs_for(directions: Tensor, mu: Tensor) -> Tensor:
    """(R, D) or (B, R, D) directions -> (R, B, D) grad outputs shaped like ``mu``."""
    directions = directions.to(dtype=mu.dtype, device=mu.device)
    if directions.dim() == 2:
        return directions[:, None, :].expand(-1, mu.shape[0], -1)
    return directions.transpose(0, 1)


def layer_gradients(
    mu: Tensor, activations: dict[str, Tensor], directions: Tensor, create_graph: bool
) -> dict[str, Tensor]:
    """(R, B, C, H, W) gradient of each direction . mu with respect to each layer's output.

    All layers share one batched backward; a layer that ``mu`` does not depend on is a one-line
    error.
    """
    names = list(activations)
    grads = batched_vjp(
        mu, [activations[n] for n in names], grad_outputs_for(directions, mu), create_graph
    )
    found = {}
    for name, g in zip(names, grads, strict=True):
        if g is None:
            raise ConfigError(f"mu does not depend on layer '{name}'; choose a layer that the "
                              "encoder uses to compute mu")
        found[name] = g
    return found


def rows_per_chunk(chunk_size: int | None, elements_per_row: int) -> int:
    """Rows (directions or tangents) per chunk: ``chunk_size``, or what fits the default budget."""
    if chunk_size is not None:
        if chunk_size < 1:
            raise ConfigError(f"chunk size must be at least 1, not {chunk_size}")
        return chunk_size
    return max(1, _CHUNK_ELEMENTS // max(1, elements_per_row))


def _reverse_channel_weights(
    mu: Tensor,
    activations: dict[str, Tensor],
    directions: Tensor,
    create_graph: bool,
    chunk_size: int | None,
) -> dict[str, Tensor]:
    """(B, R, C) per layer from full gradients, the directions taken ``chunk`` rows at a time."""
    step = rows_per_chunk(chunk_size, sum(a.numel() for a in activations.values()))
    parts: dict[str, list[Tensor]] = {name: [] for name in activations}
    for start in range(0, directions.shape[-2], step):
        rows = directions[..., start : start + step, :]
        for name, g in layer_gradients(mu, activations, rows, create_graph).items():
            parts[name].append(g.mean(dim=(-2, -1)).transpose(0, 1))
    return {name: torch.cat(chunks, dim=1) for name, chunks in parts.items()}


def _forward_channel_weights(
    mu: Tensor,
    name: str,
    activation: Tensor,
    directions: Tensor,
    create_graph: bool,
    chunk_size: int | None,
) -> Tensor:
    """(B, R, C) from one Jacobian-vector product per channel (see module doc)."""
    dummy = torch.zeros_like(mu, requires_grad=True)
    (transposed,) = torch.autograd.grad(mu, activation, dummy, create_graph=True,
                                        allow_unused=True)
    if transposed is None:
        raise ConfigError(f"mu does not depend on layer '{name}'; choose a layer that the "
                          "encoder uses to compute mu")
    b, c, h, w = activation.shape
    step = rows_per_chunk(chunk_size, activation.numel())
    projections = []  # J_b 1_k / hw for each channel k: (C, B, D) in chunks
    for start in range(0, c, step):
        channels = torch.arange(start, min(start + step, c), device=mu.device)
        tangents = activation.new_zeros(len(channels), b, c, h, w)
        tangents[torch.arange(len(channels)), :, channels] = 1.0 / (h * w)
        (jvp,) = batched_vjp(transposed, [dummy], tangents, create_graph)
        if jvp is None:  # the gradient does not depend on u: mu is constant in A
            jvp = mu.new_zeros(len(channels), *mu.shape)
        projections.append(jvp)
    jacobian_sums = torch.cat(projections)  # (C, B, D)
    return torch.einsum("rbd,kbd->brk", grad_outputs_for(directions, mu), jacobian_sums)


def prefers_forward_mode(activation: Tensor, directions: Tensor) -> bool:
    """Whether one product per channel is cheaper than one per direction for this layer."""
    return activation.shape[1] * _FORWARD_MODE_FACTOR <= directions.shape[-2]


def generic_channel_weights(
    mu: Tensor,
    activations: dict[str, Tensor],
    directions: Tensor,
    create_graph: bool,
    chunk_size: int | None = None,
) -> dict[str, Tensor]:
    """Eq. 1 for any encoder: (B, R, C) channel weights per layer, in the cheaper mode.

    Layers with at most half as many channels as directions go forward (one product per
    channel), the rest share reverse passes (one product per direction); both in chunks of
    ``chunk_size`` rows. A layer whose forward mode fails (an operator without a double
    backward, such as fused attention on CPU) goes reverse.
    """
    weights = {}
    for name, activation in activations.items():
        if prefers_forward_mode(activation, directions):
            try:
                weights[name] = _forward_channel_weights(
                    mu, name, activation, directions, create_graph, chunk_size
                )
            except RuntimeError:
                pass
    reverse = {n: a for n, a in activations.items() if n not in weights}
    if reverse:
        weights.update(
            _reverse_channel_weights(mu, reverse, directions, create_graph, chunk_size)
        )
    return {name: weights[name] for name in activations}


def _channel_major_weight(linear: nn.Linear, c: int, hw: int, differentiable: bool) -> Tensor:
    """``W / hw`` laid out (C, hw, H1) so each channel's block is one contiguous GEMM operand.

    The 1/hw of Eq. 1 is folded in. Outside differentiable mode the copy is cached per Linear and
    rebuilt when the weight changes (its version counter moves on every in-place update, such as
    an optimiser step or ``load_state_dict``).
    """
    weight = linear.weight
    if differentiable:
        return (weight.reshape(-1, c, hw) / hw).permute(1, 2, 0).contiguous()
    key = (weight.data_ptr(), weight._version, c, hw, weight.dtype, weight.device)
    cached = _WEIGHT_CACHE.get(linear)
    if cached is None or cached[0] != key:
        with torch.no_grad():
            copy = (weight.reshape(-1, c, hw) / hw).permute(1, 2, 0).contiguous()
        cached = (key, copy)
        _WEIGHT_CACHE[linear] = cached
    return cached[1]


def _v_buffer(linear: nn.Linear, shape: tuple[int, int, int], like: Tensor) -> Tensor | None:
    """A reused CPU buffer for ``V`` of ``shape``, or None where a fresh tensor is the better deal.

    Only on CPU (allocators of accelerators already recycle memory) and up to
    ``_MAX_SCRATCH_NUMEL`` elements, so a huge batch does not pin its memory after the call.
    """
    numel = shape[0] * shape[1] * shape[2]
    if like.device.type != "cpu" or numel > _MAX_SCRATCH_NUMEL:
        return None
    scratch = _V_SCRATCH.get(linear)
    if scratch is None or scratch.dtype != like.dtype or scratch.numel() < numel:
        scratch = torch.empty(numel, dtype=like.dtype)
        _V_SCRATCH[linear] = scratch
    return scratch[:numel].view(shape)


def linear_head_channel_weights(
    mu: Tensor,
    activation: Tensor,
    linear_input: Tensor,
    linear_output: Tensor,
    linear: nn.Linear,
    directions: Tensor,
    create_graph: bool,
    chunk_size: int | None = None,
) -> Tensor:
    """Eq. 1 through a ``pointwise -> Flatten -> Linear`` head: (B, R, C), see module doc.

    ``linear_input`` / ``linear_output`` are the tensors that entered and left ``linear`` in the
    same forward pass as ``mu``; ``activation`` is the layer output ``A``. The Jacobian of the
    rest of the chain is taken ``chunk_size`` directions at a time.
    """
    b, c, h, w = activation.shape
    # Elementwise derivative of the pointwise chain, from the real forward graph.
    (mask,) = torch.autograd.grad(
        linear_input,
        activation,
        torch.ones_like(linear_input),
        retain_graph=True,
        create_graph=create_graph,
    )
    weight = _channel_major_weight(linear, c, h * w, create_graph)  # (C, hw, H1)
    # V[k, b, j] = sum_p mask[b, k, p] * W[j, k, p] / hw: one (B x hw) @ (hw x H1) per channel.
    mask = mask.reshape(b, c, h * w).transpose(0, 1).contiguous()
    # The scratch buffer has the weight's dtype: under autocast (bf16 masks) take a fresh tensor.
    reuse = not create_graph and mask.dtype == weight.dtype
    out = _v_buffer(linear, (c, b, weight.shape[-1]), weight) if reuse else None
    v = torch.bmm(mask, weight) if out is None else torch.bmm(mask, weight, out=out)
    step = rows_per_chunk(chunk_size, linear_output.numel())
    parts = []
    for start in range(0, directions.shape[-2], step):
        rows = grad_outputs_for(directions[..., start : start + step, :], mu)
        (jac,) = batched_vjp(mu, [linear_output], rows, create_graph)
        if jac is None:
            raise ConfigError(f"mu does not depend on the output of {linear}")
        # alpha[b, r, k] = sum_j J[r, b, j] * V[k, b, j]: one (R x H1) @ (H1 x C) per image,
        # reading V through strides instead of copying it.
        parts.append(torch.bmm(jac.transpose(0, 1), v.permute(1, 2, 0)))
    return torch.cat(parts, dim=1)
