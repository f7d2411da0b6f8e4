"""Training cost of the UCSD recipes: one Adam step of each recipe against the paper's model.

Setting: the UCSD cpu preset (UCSDVAE, 1x100x100 frames, latent 32, channels 64/128/256, hidden
1024, batch 32, Adam lr 1e-4), seeded random frames around a mean grey level, CPU, each time the
median of several repeats after a warm-up (benchmarks/timing.py). A step is forward, the
negative ELBO, backward and the optimiser update, as in training.

Headline (last line): ``live_over_paper_step_time`` = time of a ``live`` step / time of a
``paper`` step, the price of the recipe that keeps the encoder alive (docs/ucsd-recipe.md).
"""

from __future__ import annotations

import argparse

import torch
from timing import timeit

from vaecam.models import build_model
from vaecam.models.ucsd import RECIPES


def step_time(recipe: str, frames: torch.Tensor, repeats: int) -> float:
    """Median seconds of one training step of ``recipe`` on ``frames``."""
    torch.manual_seed(0)
    model = build_model("ucsd-vae", **RECIPES[recipe])
    model.fit_data(frames)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        loss = model.loss(model(frames), frames).total
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    return timeit(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    frames = (0.45 + 0.05 * torch.randn(32, 1, 100, 100, generator=g)).clamp(0, 1)
    times = {recipe: step_time(recipe, frames, args.repeats) for recipe in RECIPES}
    for recipe, seconds in times.items():
        print(f"{recipe}: {seconds:.3f} s per step of 32 frames "
              f"({seconds / times['paper']:.2f}x paper)")
    print(f"live_over_paper_step_time: {times['live'] / times['paper']:.2f}")


if __name__ == "__main__":
    main()
