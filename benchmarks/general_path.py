"""Attention off the shortcut: vaecam's general path against a plain autograd loop.

Setting: the MNIST VAE's first convolution (``encoder.0``, 64 channels; no Linear-head
shortcut applies there), one thread, per-dimension maps of every latent unit. Measured in one
run, each the median of several repeats after a warm-up:

* loop: one forward pass, then one ``torch.autograd.grad`` per latent unit with respect to the
  captured layer output, channel means (Eq. 1), weighted channel sum and ReLU (Eq. 2);
* general path: ``AttentionExplainer(..., fast_path="off").per_dimension``: batched
  vector-Jacobian products in chunks (reverse mode), or one Jacobian-vector product per channel
  (forward mode) when the layer has fewer channels than there are latent units.

Rows: the paper's latent of 32 units on 256 images (the headline), and a 784-unit latent on
16 images, where forward mode needs 64 products instead of 784.
Each row also prints the work of both (floating-point operations that PyTorch counts) and their
ratio. With 32 latent units and 64 channels, reverse mode is the cheaper mode and does exactly
the loop's products (flop ratio 1.0): its time ratio can only come from running them faster.

Headline (last line): ``general_over_loop`` = loop time / general path time, latent 32.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from timing import flops, timeit
from torch import nn

from vaecam.attention import AttentionExplainer
from vaecam.models import build_model


def loop_per_dimension(model: nn.Module, x: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """Per-dimension maps the plain way: one ``autograd.grad`` per latent unit."""
    store: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("A", o))
    try:
        mu = model.encode(x)[0]
    finally:
        handle.remove()
    act = store["A"]
    maps = []
    for i in range(mu.shape[1]):
        (g,) = torch.autograd.grad(mu[:, i].sum(), act, retain_graph=True)
        alpha = g.mean(dim=(2, 3))
        maps.append(torch.relu(torch.einsum("bk,bkhw->bhw", alpha, act)).detach())
    signed = torch.stack(maps, dim=1)
    return F.interpolate(signed, size=x.shape[-2:], mode="bilinear", align_corners=False)


def compare(latent: int, batch: int, repeats: int, device: str = "cpu") -> float:
    """Print one row (loop, general path, their agreement) and return loop / general."""
    torch.manual_seed(0)
    model = build_model("mnist-vae", latent_dim=latent).eval().to(device)
    x = torch.rand(batch, 1, 28, 28).to(device)
    general = AttentionExplainer(model, "encoder.0", fast_path="off")
    error = (general.per_dimension(x) - loop_per_dimension(model, x, model.encoder[0])).abs()
    t_loop = timeit(lambda: loop_per_dimension(model, x, model.encoder[0]), repeats)
    t_general = timeit(lambda: general.per_dimension(x), repeats)
    f_loop = flops(lambda: loop_per_dimension(model, x, model.encoder[0]))
    f_general = flops(lambda: general.per_dimension(x))
    print(f"latent {latent}, {batch} images: loop {t_loop:.3f} s, general path "
          f"{t_general:.3f} s, {t_loop / t_general:.2f}x, max |difference| "
          f"{error.max().item():.1e}; work {f_loop / 1e9:.1f} / {f_general / 1e9:.1f} GFLOP "
          f"(flop ratio {f_loop / f_general:.2f})")
    return t_loop / t_general


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"setting: mnist-vae, layer encoder.0 (64 channels), 28x28 inputs, {args.device}, "
          f"{torch.get_num_threads()} CPU thread(s), median of {args.repeats} after a warm-up")
    compare(784, 16, args.repeats, args.device)
    headline = compare(32, args.batch, args.repeats, args.device)
    print(f"general_over_loop: {headline:.2f}")


if __name__ == "__main__":
    main()
