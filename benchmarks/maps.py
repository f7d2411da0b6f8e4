"""Anomaly-map cost: time per image of each method relative to one forward + backward pass.

Setting: the UCSD cpu-preset architecture (UCSDVAE, input 1x100x100, latent 32, channels
64/128/256, hidden 1024) and the MVTec cpu-preset architecture (ResNet18VAE, input 3x128x128,
latent 128, hidden 1024), random weights (seeded), a batch of 16 random images, CPU, each time
the median of several repeats after a warm-up (benchmarks/timing.py).

* reference: one forward pass in eval mode and the backward pass of the batch's negative ELBO
  with respect to the input (``torch.autograd.grad``), the unit every ratio is expressed in;
* each method of :mod:`vaecam.maps` with its default options (projection with its default
  number of steps), timed alone through ``compute_maps``, so its own forward pass is included
  (with several maps in one call the shared forward pass is paid once).

Headline (last line): ``projection_cost_over_forward_backward`` = projection time / reference
time on the UCSD model, the most expensive method, for planning runs with ``--maps all``.
"""

from __future__ import annotations

import argparse

import torch
from timing import timeit

from vaecam.maps import available_maps, build_map, compute_maps
from vaecam.models import build_model

MODELS = {
    "ucsd": ("ucsd-vae", {"input_shape": (1, 100, 100), "latent_dim": 32,
                          "channels": (64, 128, 256), "hidden": 1024}),
    "mvtec": ("resnet18-vae", {"input_shape": (3, 128, 128), "latent_dim": 128,
                               "hidden": 1024}),
}


def forward_backward(model: torch.nn.Module, images: torch.Tensor) -> None:
    """Forward in eval mode, then d(negative ELBO)/d(images): the reference unit of cost."""
    x = images.clone().requires_grad_(True)
    loss = model.loss(model(x), x).total
    torch.autograd.grad(loss, x)


def bench_model(label: str, batch: int, repeats: int) -> dict[str, float]:
    """Ratio to forward + backward of every method on one architecture; prints a table."""
    name, config = MODELS[label]
    torch.manual_seed(0)
    model = build_model(name, **config).eval()
    images = torch.rand((batch, *config["input_shape"]), generator=torch.Generator().manual_seed(1))
    reference = timeit(lambda: forward_backward(model, images), repeats)
    print(f"{label}: {name} {config}")
    print(f"  {'forward+backward':18s} {1000 * reference / batch:9.1f} ms/image    1.00x")
    ratios = {}
    for method_name in available_maps():
        method = build_map(method_name)
        seconds = timeit(lambda m=method: compute_maps(model, images, [m]), repeats)
        ratios[method_name] = seconds / reference
        per_image = 1000 * seconds / batch
        print(f"  {method.label:18s} {per_image:9.1f} ms/image {ratios[method_name]:7.2f}x")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"batch {args.batch}, CPU, {torch.get_num_threads()} threads, median of "
          f"{args.repeats} after a warm-up, default options "
          f"(projection steps={build_map('projection').steps})")
    ratios = {label: bench_model(label, args.batch, args.repeats) for label in MODELS}
    print(f"projection_cost_over_forward_backward: {ratios['ucsd']['projection']:.2f}")


if __name__ == "__main__":
    main()
