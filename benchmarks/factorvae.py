"""Cost of AD-FactorVAE against FactorVAE, of the FactorVAE metric, and of dSprites batches.

Setting: latent 32, batch 64, CPU, 64x64 dSprites (procedural), one torch thread by default: on a
shared 2-core machine, two threads spin against other processes and per-step times then vary
tenfold (``--threads 2`` on an idle machine). Measured in one run:

* a FactorVAE training step and an AD-FactorVAE step (all 496 latent pairs, layer ``encoder.6``,
  ReLU, mean): the median time per step of ``FactorVAEModule.training_step`` inside a Lightning
  fit (both optimiser steps and logging included), after warm-up steps, on a fixed set of
  pre-rendered images so that rendering is not counted; the two variants take turns over
  several short fits so that load from other processes falls on both alike;
* the FactorVAE metric with the reproduction sizes (100 images per vote, 800 + 200 votes, 10,000
  images for the variances) on a briefly trained model, with dim pruning off
  (``prune_std_threshold=0``) so that every vote runs whatever the model learnt;
* rendering a batch of 64 dSprites images (procedural), alone and through the torch Dataset.

Headline (last line): ``ad_step_ratio`` = AD-FactorVAE step time / FactorVAE step time
(acceptance: at most 2).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import lightning as L
import numpy as np
import torch
from timing import timeit
from torch.utils.data import TensorDataset

from vaecam.data.dsprites import load_dsprites
from vaecam.metrics.disentanglement import (
    FACTORVAE_METRIC_PRESETS,
    factor_vae_metric,
    torch_representation,
)
from vaecam.training.factorvae_module import ADLossSettings, FactorVAEModule


class StepTimer(L.Callback):
    """Wall time of every training batch (forward, both backward passes, both steps, logging)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, idx: int) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, module: Any, out: Any, batch: Any,
                           idx: int) -> None:
        self.times.append(time.perf_counter() - self._start)


def step_times(variants: list[str], images: torch.Tensor, batch: int, warmup: int, steps: int,
               rounds: int) -> tuple[dict[str, float], dict[str, FactorVAEModule]]:
    """Median seconds per training step of each variant.

    The variants take turns (``rounds`` short fits each, ``warmup`` steps dropped from every fit)
    so that load from other processes on a shared machine falls on all of them alike.
    """
    times: dict[str, list[float]] = {v: [] for v in variants}
    modules: dict[str, FactorVAEModule] = {}
    for _ in range(rounds):
        for variant in variants:
            L.seed_everything(0, verbose=False)
            module = FactorVAEModule({"latent_dim": 32}, variant=variant, gamma=40.0,
                                     ad=ADLossSettings(lambda_ad=1.0))
            timer = StepTimer()
            trainer = L.Trainer(max_steps=warmup + steps, accelerator="cpu", logger=False,
                                enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, callbacks=[timer],
                                log_every_n_steps=10)
            loader = torch.utils.data.DataLoader(TensorDataset(images), batch_size=batch,
                                                 shuffle=True)
            trainer.fit(module, loader)
            times[variant] += timer.times[warmup:]
            modules[variant] = module
    return {v: statistics.median(t) for v, t in times.items()}, modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=3, help="steps dropped from each fit")
    parser.add_argument("--repeats", type=int, default=8, help="timed steps per fit")
    parser.add_argument("--rounds", type=int, default=3, help="fits per variant, in turns")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1; 0: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    data = load_dsprites("procedural")
    rng = np.random.default_rng(0)

    render = timeit(lambda: data.observations_from_factors(data.sample_factors(args.batch, rng)),
                    args.repeats)
    dataset = data.torch_dataset()
    indices = rng.integers(0, len(dataset), size=args.batch).tolist()
    via_dataset = timeit(lambda: torch.stack(dataset.__getitems__(indices)), args.repeats)
    print(f"render {args.batch} dSprites images (procedural): {render * 1e3:.2f} ms")
    print(f"batch of {args.batch} through the torch Dataset + stack: {via_dataset * 1e3:.2f} ms")

    n_images = args.batch * 8
    images = torch.from_numpy(data.sample(n_images, rng)[1])
    medians, modules = step_times(["factorvae", "ad-factorvae"], images, args.batch,
                                  args.warmup, args.repeats, args.rounds)
    factorvae, ad = medians["factorvae"], medians["ad-factorvae"]
    print(f"FactorVAE step (latent 32, batch {args.batch}): {factorvae * 1e3:.1f} ms")
    print(f"AD-FactorVAE step (496 pairs, encoder.6, relu, mean): {ad * 1e3:.1f} ms")

    sizes = FACTORVAE_METRIC_PRESETS["reproduction"]
    start = time.perf_counter()
    trained = modules["ad-factorvae"].model
    result = factor_vae_metric(data, torch_representation(trained), 0,
                               prune_std_threshold=0.0, **sizes)
    metric = time.perf_counter() - start
    print(f"FactorVAE metric, reproduction sizes {sizes}, pruning off: {metric:.1f} s "
          f"(score {result['eval_accuracy']:.3f} after {args.warmup + args.repeats} steps)")
    print(f"ad_step_ratio: {ad / factorvae:.2f}")


if __name__ == "__main__":
    main()
