"""vaecam against pytorch-grad-cam: the same per-dimension maps, timed on the same images.

Setting: the MNIST VAE (latent 32), a batch of 128 random 28x28 images, CPU. pytorch-grad-cam's
``GradCAM`` explains one target at a time, so it runs once per latent unit
(``ClassifierOutputTarget(i)`` of the posterior mean); vaecam computes all 32 maps in one call
(``per_dimension`` with ``normalize=True``, which is what GradCAM returns: ReLU, bilinear
upsampling, min-max per map). Rows: the first convolution (``encoder.0``, vaecam's general path)
and the last one (``encoder.2``, the paper's layer, where the Linear-head fast path applies).
Each time is the median of several repeats after a warm-up; the largest difference between the
two maps is printed with it.

Headline (last line): ``speedup_vs_gradcam`` = GradCAM time / vaecam time on the last conv.
"""

from __future__ import annotations

import argparse

import torch
from timing import timeit

from vaecam.attention import AttentionExplainer, PosteriorMean
from vaecam.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        raise SystemExit("pytorch-grad-cam is not installed: pip install grad-cam") from None
    torch.manual_seed(0)
    model = build_model("mnist-vae").eval()
    x = torch.rand(args.batch, 1, 28, 28)
    print(f"setting: mnist-vae latent {model.latent_dim}, batch {args.batch}, 28x28, CPU, "
          f"{torch.get_num_threads()} threads, median of {args.repeats} after a warm-up")
    ratio = 0.0
    for label, layer in (("first conv", "encoder.0"), ("last conv", "encoder.2")):
        ours = AttentionExplainer(model, layer, normalize=True)
        cam = GradCAM(model=PosteriorMean(model), target_layers=[model.get_submodule(layer)])

        def gradcam_per_unit(cam: GradCAM = cam) -> torch.Tensor:
            return torch.stack([
                torch.from_numpy(cam(input_tensor=x,
                                     targets=[ClassifierOutputTarget(i)] * len(x)))
                for i in range(model.latent_dim)
            ], dim=1)

        error = (ours.per_dimension(x) - gradcam_per_unit()).abs().max().item()
        t_ours = timeit(lambda ours=ours: ours.per_dimension(x), args.repeats)
        t_cam = timeit(gradcam_per_unit, args.repeats)
        ratio = t_cam / t_ours
        print(f"{label} ({layer}): vaecam {t_ours:.3f} s, pytorch-grad-cam x "
              f"{model.latent_dim} {t_cam:.3f} s, {ratio:.1f}x, max |difference| {error:.1e}")
    print(f"speedup_vs_gradcam: {ratio:.1f}")


if __name__ == "__main__":
    main()
