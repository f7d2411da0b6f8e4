"""Channel weights of Eq. 1: spatial means of d(w . mu)/dA for a set of latent directions w.

For direction ``w_r`` (a row of ``directions``) and channel ``k``:

    alpha[b, r, k] = 1/(h*w) * sum_{p,q} d (w_r . mu[b]) / d A[b, k, p, q]

Per-dimension maps use the unit vectors (``w_r = e_i``); method 2 uses ``w = 1`` (the gradient of
``sum(mu)``). Two ways to compute it:

* :func:`generic_channel_weights` works for any encoder: one vector-Jacobian product per
  direction, batched with ``is_grads_batched`` (one backward for a single direction).
* :func:`linear_head_channel_weights` is exact and much faster when the layer is followed by
  (pointwise ops ->) ``Flatten`` -> ``Linear`` inside an ``nn.Sequential``. Only channel sums of
  the gradient are needed, so the Linear weight ``W`` (H1 x C*h*w) is contracted with the
  pointwise derivative mask per channel, ``V[b, j, k] = sum_p W[j, k, p] * mask[b, k, p]``, and
  combined with the Jacobian of the cheap rest of the chain, ``J[r, b, j] = d(w_r . mu)/du_j``:
  ``alpha = J . V / (h*w)``. That costs about one backward pass through the Linear instead of D.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

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
# Modules that are elementwise only in eval mode (per-channel affine / identity).
_POINTWISE_IN_EVAL = (nn.BatchNorm2d, nn.Dropout, nn.Dropout2d)


def find_linear_head(model: nn.Module, layer_name: str) -> nn.Linear | None:
    """The Linear of a ``pointwise -> Flatten -> Linear`` chain after ``layer_name``, or None.

    The layer must be a direct child of an ``nn.Sequential``; the children after it must be
    pointwise modules, then ``nn.Flatten()`` over all non-batch dims, then ``nn.Linear``.
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
        if isinstance(module, _POINTWISE):
            continue
        if isinstance(module, _POINTWISE_IN_EVAL) and not module.training:
            continue
        is_flatten = (
            isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1
        )
        if is_flatten and i + 1 < len(following) and isinstance(following[i + 1], nn.Linear):
            return following[i + 1]
        return None
    return None


def _batched_vjp(
    output: Tensor, inputs: Tensor, grad_outputs: Tensor, create_graph: bool
) -> Tensor:
    """Vector-Jacobian products for each row of ``grad_outputs`` (R, *output.shape) -> (R, ...).

    Uses one batched backward (vmap) and falls back to a loop where an operator has no batching
    rule.
    """
    if grad_outputs.shape[0] == 1:
        (g,) = torch.autograd.grad(
            output, inputs, grad_outputs[0], retain_graph=True, create_graph=create_graph
        )
        return g.unsqueeze(0)
    try:
        (g,) = torch.autograd.grad(
            output,
            inputs,
            grad_outputs,
            retain_graph=True,
            create_graph=create_graph,
            is_grads_batched=True,
        )
        return g
    except RuntimeError:
        rows = [
            torch.autograd.grad(output, inputs, go, retain_graph=True, create_graph=create_graph)[0]
            for go in grad_outputs
        ]
        return torch.stack(rows)


def grad_outputs_for(directions: Tensor, mu: Tensor) -> Tensor:
    """(R, D) or (B, R, D) directions -> (R, B, D) grad outputs shaped like ``mu``."""
    directions = directions.to(dtype=mu.dtype, device=mu.device)
    if directions.dim() == 2:
        return directions[:, None, :].expand(-1, mu.shape[0], -1)
    return directions.transpose(0, 1)


def generic_channel_weights(
    mu: Tensor, activation: Tensor, directions: Tensor, create_graph: bool
) -> Tensor:
    """Eq. 1 for any encoder: (B, R, C) channel weights from full gradients w.r.t. ``A``."""
    grads = _batched_vjp(mu, activation, grad_outputs_for(directions, mu), create_graph)
    return grads.mean(dim=(-2, -1)).transpose(0, 1)


def linear_head_channel_weights(
    mu: Tensor,
    activation: Tensor,
    linear_input: Tensor,
    linear_output: Tensor,
    linear: nn.Linear,
    directions: Tensor,
    create_graph: bool,
) -> Tensor:
    """Eq. 1 through a ``pointwise -> Flatten -> Linear`` head: (B, R, C), see module doc.

    ``linear_input`` / ``linear_output`` are the tensors that entered and left ``linear`` in the
    same forward pass as ``mu``; ``activation`` is the layer output ``A``.
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
    weight = linear.weight.reshape(linear.out_features, c, h * w)
    # V[b, j, k] = sum_p W[j, k, p] * mask[b, k, p]: small matmuls batched over channels.
    v = torch.einsum("bkp,jkp->bjk", mask.reshape(b, c, h * w), weight)
    go = grad_outputs_for(directions, mu)
    jac = _batched_vjp(mu, linear_output, go, create_graph)  # (R, B, H1)
    return torch.einsum("rbj,bjk->brk", jac, v) / (h * w)
