"""Attention speed: method 1 (all latent dims) against the naive loop, on the MNIST VAE.

Setting: the authors' one-class MNIST architecture (latent 32), a batch of 128 images, CPU.
Measured in one run, each as the median of several repeats after a warm-up:

* naive: one full ``.backward()`` per latent dimension with a module backward hook and the
  reproduction's Python loop over channels (formula corrected), timed twice: with a forward pass
  before every backward (the plain Grad-CAM loop; the headline), and with one shared forward
  (the structure of the reproduction's method-1 code);
* batched VJP: vaecam's generic path (``fast_path="off"``), one batched vector-Jacobian product;
* method 1: vaecam's default (exact Linear-head fast path);
* method 2: one backward of ``sum(mu)``;
* pytorch-grad-cam's ``GradCAM`` once per latent dim, if that package is installed.

The work of each (floating-point operations that PyTorch counts) is printed too: the flop ratio
naive / method 1 is the speed-up the two would show at equal FLOP/s, and naive / the encoder's
forward pass bounds any method that needs that forward pass.

Headline (last line): ``speedup_vs_naive`` = naive time / method 1 time.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from timing import flops, timeit
from torch import nn

from vaecam.attention import AttentionExplainer, PosteriorMean
from vaecam.models import build_model


def _grad_cam_step(model: nn.Module, x: torch.Tensor, layer: nn.Module, mu: torch.Tensor,
                   i: int, act: torch.Tensor, store: dict[str, torch.Tensor]) -> torch.Tensor:
    """One full backward of mu_i (parameter gradients included), then Eq. 1-2 for dim i."""
    model.zero_grad()
    one_hot = torch.zeros_like(mu)
    one_hot[:, i] = 1
    mu.backward(gradient=one_hot, retain_graph=True)
    alpha = store["G"].mean(dim=(2, 3))
    m_i = torch.zeros_like(act[:, 0])
    for k in range(act.shape[1]):  # the reproduction's Python loop over channels
        m_i = m_i + alpha[:, k, None, None] * act[:, k]
    m_i = torch.relu(m_i).detach()[:, None]
    return F.interpolate(m_i, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


def naive_method1(model: nn.Module, x: torch.Tensor, layer: nn.Module,
                  shared_forward: bool) -> torch.Tensor:
    """Method 1 the plain way: one full ``.backward()`` per latent dim, hooks on the layer.

    ``shared_forward=False``: a forward pass of the VAE before each backward (the usual
    Grad-CAM loop, one target at a time). ``shared_forward=True``: one forward, then the 32
    backward passes reuse its graph (the structure of the reproduction's method-1 code).
    """
    store: dict[str, torch.Tensor] = {}
    fwd = layer.register_forward_hook(lambda m, i, o: store.__setitem__("A", o))
    bwd = layer.register_full_backward_hook(lambda m, gi, go: store.__setitem__("G", go[0]))
    maps = []
    out = model(x)
    for i in range(out.mu.shape[1]):
        if not shared_forward and i > 0:
            out = model(x)
        maps.append(_grad_cam_step(model, x, layer, out.mu, i, store["A"], store))
    fwd.remove()
    bwd.remove()
    model.zero_grad()
    return torch.stack(maps).mean(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build_model("mnist-vae").eval().to(args.device)
    x = torch.rand(args.batch, 1, 28, 28).to(args.device)
    layer = model.encoder[2]
    fast = AttentionExplainer(model, "encoder.2")
    generic = AttentionExplainer(model, "encoder.2", fast_path="off")

    check = (fast.method1(x) - naive_method1(model, x, layer, True)).abs().max().item()
    print(f"setting: mnist-vae latent 32, batch {args.batch}, layer encoder.2, "
          f"maps upsampled to 28x28, {args.device}, {torch.get_num_threads()} CPU threads, "
          f"median of {args.repeats} after a warm-up")
    print(f"max |method1 - naive| = {check:.2e}")

    t_naive = timeit(lambda: naive_method1(model, x, layer, False), args.repeats)
    t_shared = timeit(lambda: naive_method1(model, x, layer, True), args.repeats)
    t_vjp = timeit(lambda: generic.method1(x), args.repeats)
    t_m1 = timeit(lambda: fast.method1(x), args.repeats)
    t_m2 = timeit(lambda: fast.method2(x), args.repeats)
    print(f"naive loop, forward + full backward per dim: {t_naive:.3f} s")
    print(f"naive loop, one forward + 32 full backwards: {t_shared:.3f} s")
    print(f"batched VJP (vaecam generic path):           {t_vjp:.3f} s")
    print(f"method 1 (vaecam fast path):                 {t_m1:.3f} s")
    print(f"method 2 (vaecam):                           {t_m2:.3f} s")
    print(f"batched VJP vs naive: {t_naive / t_vjp:.1f}x")
    print(f"method 1 vs naive with one shared forward: {t_shared / t_m1:.1f}x")
    print(f"method1_over_method2: {t_m1 / t_m2:.2f}")
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        print("pytorch-grad-cam not installed: skipped")
    else:
        cam = GradCAM(model=PosteriorMean(model), target_layers=[layer])

        def gradcam_per_dim() -> None:
            for i in range(model.latent_dim):
                cam(input_tensor=x, targets=[ClassifierOutputTarget(i)] * len(x))

        t_cam = timeit(gradcam_per_dim, max(1, args.repeats - 1))
        print(f"pytorch-grad-cam GradCAM x 32 dims: {t_cam:.3f} s  "
              f"(method 1 is {t_cam / t_m1:.1f}x faster)")
    f_naive = flops(lambda: naive_method1(model, x, layer, False))
    f_m1, f_forward = flops(lambda: fast.method1(x)), flops(lambda: model.encode(x))
    print(f"work (GFLOP): naive {f_naive / 1e9:.1f}, method 1 {f_m1 / 1e9:.2f}, of which the "
          f"encoder's forward pass {f_forward / 1e9:.2f}")
    print(f"flop ratio naive / method 1: {f_naive / f_m1:.1f} (the speed-up if both ran at the "
          f"same FLOP/s); naive / forward pass alone: {f_naive / f_forward:.1f}")
    print(f"speedup_vs_naive: {t_naive / t_m1:.1f}")


if __name__ == "__main__":
    main()
