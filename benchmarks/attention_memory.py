"""Peak memory of method 1 over a large latent: 784 units on 16 MNIST-sized images.

Each configuration runs in its own process (peak RSS is per process): the MNIST VAE with a
784-unit latent, 16 random 28x28 images, method 1 of the first conv (``encoder.0``) and the
last conv (``encoder.2``), with the fast path on (``auto``) and off, directions chunked
automatically (``chunk_size=None``) and with ``--chunk`` if given. Each row prints the peak
resident memory of its process (model, data and the Python runtime included) and the time.
Headline (last line): ``peak_rss_gb`` = the largest peak over all rows.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import torch

from vaecam.attention import AttentionExplainer
from vaecam.models import build_model


def _child(layer: str, fast_path: str, chunk: int | None) -> None:
    torch.manual_seed(0)
    model = build_model("mnist-vae", latent_dim=784).eval()
    x = torch.rand(16, 1, 28, 28)
    explainer = AttentionExplainer(model, layer, fast_path=fast_path, chunk_size=chunk)
    start = time.perf_counter()
    maps = explainer.method1(x)
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux
    print(f"{peak_gb:.3f} {seconds:.2f} {tuple(maps.shape)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk", type=int, default=None)
    parser.add_argument("--child", nargs=2, metavar=("LAYER", "FAST_PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child, args.chunk)
        return
    print(f"setting: mnist-vae latent 784, 16 images 28x28, method 1, CPU, "
          f"{torch.get_num_threads()} threads, chunk {args.chunk or 'automatic'}")
    peaks = []
    for layer in ("encoder.0", "encoder.2"):
        for fast_path in ("auto", "off"):
            command = [sys.executable, __file__, "--child", layer, fast_path]
            if args.chunk:
                command += ["--chunk", str(args.chunk)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            peak, seconds, shape = out.split(maxsplit=2)
            peaks.append(float(peak))
            print(f"{layer}, fast path {fast_path}: peak RSS {float(peak):.2f} GB, "
                  f"{float(seconds):.2f} s, maps {shape.strip()}")
    print(f"peak_rss_gb: {max(peaks):.2f}")


if __name__ == "__main__":
    main()
