"""Training throughput of every experiment, in-memory data against the DataLoader, and the
projected wall time of every ``paper`` preset on the current device.

Measured in one run, on CUDA when a GPU is visible, else on the CPU:

* the training step of each experiment's real model inside a Lightning fit of its real module
  (``VAEModule`` or ``FactorVAEModule``): forward, loss, backward, Adam step(s) and logging, from
  ``on_train_batch_start`` to ``on_train_batch_end``, fed by the in-memory loader so that data
  costs nothing; median over the timed steps after warm-up steps, in fp32 (``32-true``) and in
  ``bf16-mixed`` autocast. Slow steps are timed fewer times (at least 2; a time budget per
  measurement), and the count is printed;
* UCSD data: a UCSD-like dataset of 2,550 frames (17 clips x 150, Ped2's size) written as
  360x240 JPEG files by ``vaecam.data.synthetic``, read by the real ``UCSDTrainFrames`` (decode,
  grey, resize to 100 px) through the ``DataLoader`` path, against the same frames held in memory
  (:mod:`vaecam.data.in_memory`): time per batch of 32 for each alone, then a fit with each,
  timing its steps and the wait for data between steps (fetching the next batch plus
  Lightning's own work between batches);
* dSprites: a batch of 64 rendered on the fly through the Dataset + DataLoader against one sliced
  from the precomputed set (the full set, 737,280 images, is not built here; its rendering time
  is extrapolated from a part and printed as such);
* MVTec augmentation of a batch of 8 images at 256 px: per item against :func:`augment_batch`.

The projection multiplies the measured step times by each paper preset's number of steps (read
from ``src/vaecam/configs/*.yaml``) and runs (seeds, categories, grid); it assumes in-memory data
(or augmentation on the device for MVTec), i.e. that data loading costs nothing.

Headline (last line): ``inmemory_over_dataloader`` = UCSD iteration time with the DataLoader /
with the in-memory loader on this device, an iteration being the step (median over both fits:
the same computation, so one number, robust to load from other processes) plus the loader's
median wait for data.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from timing import timeit
from torch.utils.data import TensorDataset

from vaecam.configs import load_preset
from vaecam.data.dsprites import load_dsprites
from vaecam.data.in_memory import load_in_memory
from vaecam.data.synthetic import make_ucsd_like
from vaecam.data.transforms import AugmentConfig, augment, augment_batch
from vaecam.data.ucsd import UCSDTrainFrames
from vaecam.training.factorvae_module import FactorVAEModule
from vaecam.training.loaders import TensorBatchLoader, make_loader
from vaecam.training.module import VAEModule
from vaecam.training.sampler import SeededShuffleSampler

UCSD_CONFIG = {"input_shape": [1, 100, 100], "latent_dim": 32, "channels": [64, 128, 256],
               "hidden": 1024, "loss": "bce"}
PRECISIONS = ("32-true", "bf16-mixed")


@dataclass(frozen=True)
class Step:
    """One experiment's training step: its module, image shape and batch size."""

    name: str
    build: Callable[[], L.LightningModule]
    shape: tuple[int, int, int]
    batch: int


def _resnet(size: int) -> VAEModule:
    return VAEModule("resnet18-vae", {"input_shape": [3, size, size], "latent_dim": 128,
                                      "hidden": 1024}, lr=1e-4)


STEPS = (
    Step("mnist", lambda: VAEModule("mnist-vae", {"latent_dim": 32}, lr=1e-3), (1, 28, 28), 128),
    Step("ucsd", lambda: VAEModule("ucsd-vae", UCSD_CONFIG, lr=1e-4), (1, 100, 100), 32),
    Step("mvtec128", lambda: _resnet(128), (3, 128, 128), 8),
    Step("mvtec256", lambda: _resnet(256), (3, 256, 256), 8),
    Step("factorvae", lambda: FactorVAEModule({"latent_dim": 32}), (1, 64, 64), 64),
    Step("ad-factorvae", lambda: FactorVAEModule({"latent_dim": 32}, variant="ad-factorvae"),
         (1, 64, 64), 64),
)
LABELS = {"mnist": "MNIST VAE 28 px, batch 128", "ucsd": "UCSD VAE 100 px, batch 32",
          "mvtec128": "ResNet18-VAE 128 px, batch 8", "mvtec256": "ResNet18-VAE 256 px, batch 8",
          "factorvae": "FactorVAE 64 px, batch 64",
          "ad-factorvae": "AD-FactorVAE 64 px, batch 64 (496 pairs)"}


class StepTimer(L.Callback):
    """Step times (batch start to end) and data waits (batch end to next batch start: fetching
    the next batch plus Lightning's own work) after ``warmup`` steps; stops the fit after
    ``repeats`` timed steps or, with at least 2, once they add up to ``budget`` seconds."""

    def __init__(self, warmup: int, repeats: int, budget: float, cuda: bool) -> None:
        self.warmup, self.repeats, self.budget, self.cuda = warmup, repeats, budget, cuda
        self.steps: list[float] = []
        self.waits: list[float] = []
        self._end: float | None = None

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._start = self._now()
        if self._end is not None:
            self.waits.append(self._start - self._end)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step <= self.warmup:  # counted after the optimiser step
            return
        self._end = self._now()
        self.steps.append(self._end - self._start)
        enough = len(self.steps) >= self.repeats
        spent = len(self.steps) >= 2 and sum(self.steps) >= self.budget
        if enough or spent:
            trainer.should_stop = True

    def step(self) -> float:
        return statistics.median(self.steps)

    def wait(self) -> float:
        return statistics.median(self.waits)


def time_fit(module: L.LightningModule, loader: Any, precision: str, accelerator: str,
             warmup: int, repeats: int, budget: float) -> StepTimer:
    """Fit ``module`` on ``loader`` until the timer has its steps; returns the timer."""
    timer = StepTimer(warmup, repeats, budget, accelerator == "gpu")
    trainer = L.Trainer(max_steps=warmup + repeats + 1, max_epochs=-1, accelerator=accelerator,
                        devices=1, precision=precision, logger=False, callbacks=[timer],
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0,
                        use_distributed_sampler=False)
    trainer.fit(module, train_dataloaders=loader)
    return timer


def memory_loader(shape: tuple[int, int, int], batch: int, n_batches: int,
                  device: torch.device) -> TensorBatchLoader:
    """Random 8-bit images held on ``device``, enough for ``n_batches`` batches."""
    n = batch * n_batches
    codes = torch.randint(0, 256, (n, *shape), generator=torch.Generator().manual_seed(0))
    images = load_in_memory(TensorDataset(codes.to(torch.uint8).float() / 255), device)
    return TensorBatchLoader(images, batch, SeededShuffleSampler(n, seed=0))


def measure_steps(args: argparse.Namespace, accelerator: str, device: torch.device
                  ) -> dict[tuple[str, str], float]:
    """Median step seconds of every experiment and precision, printed as they come."""
    results: dict[tuple[str, str], float] = {}
    print(f"\n== training steps (Lightning fit, in-memory data; median of timed steps after "
          f"{args.warmup} warm-up)")
    print(f"{'step':46s} {'precision':11s} {'ms/step':>9s} {'img/s':>8s} {'timed':>6s}")
    for step in STEPS:
        if args.only and step.name not in args.only:
            continue
        loader = memory_loader(step.shape, step.batch, args.warmup + args.repeats + 2, device)
        for precision in PRECISIONS:
            timer = time_fit(step.build(), loader, precision, accelerator, args.warmup,
                             args.repeats, args.budget)
            seconds = timer.step()
            results[(step.name, precision)] = seconds
            print(f"{LABELS[step.name]:46s} {precision:11s} {seconds * 1e3:9.1f} "
                  f"{step.batch / seconds:8.1f} {len(timer.steps):6d}", flush=True)
    return results


def ucsd_data(args: argparse.Namespace, accelerator: str, device: torch.device,
              workdir: Path) -> tuple[float, float, float]:
    """UCSD DataLoader against in-memory: per batch alone, and inside training fits.

    Returns (step s, data wait per iteration with the DataLoader s, with in-memory s).
    """
    print("\n== UCSD data: DataLoader (decode + resize per frame) vs in-memory")
    start = time.perf_counter()
    root = make_ucsd_like(workdir, "UCSDped2", n_train_clips=17, n_test_clips=1,
                          frames_per_clip=150, size=(360, 240), ext=".jpg")
    print(f"wrote 2,550 + 150 JPEG frames of 360x240 in {time.perf_counter() - start:.1f} s")
    dataset = UCSDTrainFrames(root, 100)
    pin = device.type == "cuda"
    dataloader = make_loader(dataset, 32, 0, True, args.workers, pin)
    start = time.perf_counter()
    in_memory = make_loader(dataset, 32, 0, True, args.workers, in_memory=True, device=device)
    load = time.perf_counter() - start
    size = in_memory.images.codes.numel() / 2**20
    print(f"in-memory: read {len(dataset)} frames once in {load:.1f} s ({size:.1f} MiB uint8 "
          f"on {device})")

    def per_batch(loader: Any, n: int = 12) -> float:
        times, it = [], iter(loader)
        for _ in range(n):
            begin = time.perf_counter()
            batch = next(it).to(device, non_blocking=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - begin)
            del batch
        return statistics.median(times[1:])

    batch_dl, batch_mem = per_batch(dataloader), per_batch(in_memory)
    print(f"batch of 32 alone, DataLoader ({args.workers} workers): {batch_dl * 1e3:.2f} ms; "
          f"in-memory: {batch_mem * 1e3:.3f} ms ({batch_dl / batch_mem:.0f}x)")
    steps, waits = [], {}
    for name, loader in (("DataLoader", dataloader), ("in-memory", in_memory)):
        module = VAEModule("ucsd-vae", UCSD_CONFIG, lr=1e-4)
        timer = time_fit(module, loader, "32-true", accelerator, args.warmup,
                         max(args.repeats, 4), args.budget)
        steps += timer.steps
        waits[name] = timer.wait()
        print(f"fit with {name}: step {timer.step() * 1e3:.1f} ms, wait for data between steps "
              f"{timer.wait() * 1e3:.2f} ms (medians of {len(timer.steps)} steps, "
              f"{len(timer.waits)} waits)", flush=True)
    return statistics.median(steps), waits["DataLoader"], waits["in-memory"]


def dsprites_data(device: torch.device) -> None:
    """dSprites batches: rendered through the Dataset + DataLoader vs sliced from memory."""
    print("\n== dSprites data (procedural), batches of 64")
    data = load_dsprites("procedural")
    dataset = data.torch_dataset()
    dataloader = make_loader(dataset, 64, 0, True)
    it = iter(dataloader)
    rendered = timeit(lambda: next(it), 100)
    part = 16384
    subset = TensorDataset(torch.from_numpy(data.observations_from_factors(
        data.index_to_factors(np.arange(part)))))
    start = time.perf_counter()
    images = load_in_memory(subset, device)
    build = time.perf_counter() - start
    render_start = time.perf_counter()
    data.observations_from_factors(data.index_to_factors(np.arange(part)))
    render = time.perf_counter() - render_start
    loader = TensorBatchLoader(images, 64, SeededShuffleSampler(part, 0))
    mem_it = iter(loader)
    sliced = timeit(lambda: next(mem_it), 100)
    full = len(dataset)
    print(f"batch via Dataset + DataLoader (rendered): {rendered * 1e3:.2f} ms; from memory: "
          f"{sliced * 1e3:.3f} ms ({rendered / sliced:.0f}x)")
    print(f"precomputing: {part} images rendered in {render:.2f} s and encoded in {build:.2f} s;"
          f" all {full:,} extrapolated: {(render + build) * full / part:.0f} s, "
          f"{full * 4096 / 2**30:.2f} GiB uint8")


def mvtec_augmentation(device: torch.device) -> None:
    """Augmenting 8 images of 256 px: per item (Dataset side) vs one batched call."""
    print("\n== MVTec augmentation, 8 images of 3x256x256")
    config = AugmentConfig()
    images = torch.rand(8, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    per_item = timeit(lambda: [augment(images[k], config, 0, k) for k in range(8)], 5)
    on_device = images.to(device)

    def batched() -> None:
        augment_batch(on_device, config, 0, list(range(8)))
        if device.type == "cuda":
            torch.cuda.synchronize()

    together = timeit(batched, 5)
    print(f"per item (CPU): {per_item * 1e3:.1f} ms; augment_batch on {device}: "
          f"{together * 1e3:.2f} ms ({per_item / together:.1f}x)")


def _human(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def projection(steps: dict[tuple[str, str], float]) -> None:
    """Wall time of every paper preset from the measured step times."""
    mnist = load_preset("mnist", "paper").options
    ucsd = load_preset("ucsd", "paper").options
    mvtec = load_preset("mvtec", "paper").options
    dsprites = load_preset("dsprites", "paper").options

    def per_epoch(n: int, batch: int) -> int:
        return math.ceil(n / batch)

    grid = len(dsprites["gammas"]) * len(dsprites["seeds"])
    rows = [  # label, step key, optimiser steps per run, runs, counted in the total
        ("MNIST one digit, bundled (450 train)", "mnist",
         mnist["max_epochs"] * per_epoch(450, mnist["batch_size"]), len(mnist["seeds"]), False),
        ("MNIST one digit, full (~5,400 train)", "mnist",
         mnist["max_epochs"] * per_epoch(5400, mnist["batch_size"]), len(mnist["seeds"]), True),
        ("UCSD Ped1 (6,800 frames)", "ucsd",
         ucsd["max_epochs"] * per_epoch(6800, ucsd["batch_size"]), len(ucsd["seeds"]), True),
        ("UCSD Ped2 (2,550 frames)", "ucsd",
         ucsd["max_epochs"] * per_epoch(2550, ucsd["batch_size"]), len(ucsd["seeds"]), True),
        ("MVTec, 15 categories (10,000 augmented, 256 px)", "mvtec256",
         mvtec["max_epochs"] * per_epoch(mvtec["num_augmented"], mvtec["batch_size"]),
         15 * len(mvtec["seeds"]), True),
        (f"dSprites FactorVAE ({grid} runs: gammas x seeds)", "factorvae",
         dsprites["max_steps"], grid, True),
        (f"dSprites AD-FactorVAE ({grid} runs)", "ad-factorvae", dsprites["max_steps"], grid,
         True),
    ]
    print("\n== projected wall time of the paper presets on this device (measured step time x "
          "steps; in-memory data, no evaluation)")
    print(f"{'preset':50s} {'steps/run':>10s} {'runs':>5s} {'fp32':>9s} {'bf16-mixed':>11s}")
    totals = dict.fromkeys(PRECISIONS, 0.0)
    for label, key, n_steps, runs, counted in rows:
        cells = []
        for precision in PRECISIONS:
            seconds = steps.get((key, precision), math.nan) * n_steps * runs
            cells.append(_human(seconds) if math.isfinite(seconds) else "n/a")
            if counted:
                totals[precision] += seconds
        mark = "" if counted else " (not in total)"
        print(f"{label + mark:50s} {n_steps:10,d} {runs:5d} {cells[0]:>9s} {cells[1]:>11s}")
    cells = [_human(totals[p]) if math.isfinite(totals[p]) else "n/a" for p in PRECISIONS]
    print(f"{'total (this device, one run after another)':50s} {'':10s} {'':5s} "
          f"{cells[0]:>9s} {cells[1]:>11s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps per fit (default 3 on a GPU, 1 on the CPU)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per fit (at most)")
    parser.add_argument("--budget", type=float, default=6.0,
                        help="seconds of timed steps per fit after which timing stops (>= 2)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (UCSD)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1; 0: torch's own choice)")
    parser.add_argument("--only", nargs="*", choices=[s.name for s in STEPS],
                        help="time only these steps (default all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    cuda = torch.cuda.is_available()
    if args.warmup is None:
        args.warmup = 3 if cuda else 1
    accelerator, device = ("gpu", torch.device("cuda", 0)) if cuda else ("cpu",
                                                                         torch.device("cpu"))
    where = torch.cuda.get_device_name(0) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, Lightning {L.__version__}, {where}")
    L.seed_everything(0, verbose=False)
    steps = measure_steps(args, accelerator, device)
    with tempfile.TemporaryDirectory() as tmp:
        step, wait_dl, wait_mem = ucsd_data(args, accelerator, device, Path(tmp))
    dsprites_data(device)
    mvtec_augmentation(device)
    projection(steps)
    dataloader_iteration, memory_iteration = step + wait_dl, step + wait_mem
    print(f"\nUCSD iteration = step + wait for data: DataLoader {dataloader_iteration * 1e3:.1f} "
          f"ms, in-memory {memory_iteration * 1e3:.1f} ms (step {step * 1e3:.1f} ms, the "
          f"median of both fits: the same computation). The DataLoader's wait is "
          f"{wait_dl * 1e3:.1f} ms; the in-memory loader reaches 1.5x wherever a step takes "
          f"under {2 * (wait_dl - 1.5 * wait_mem) * 1e3:.0f} ms, e.g. "
          f"{(wait_dl + 0.005) / (wait_mem + 0.005):.1f}x at a 5 ms step")
    print(f"inmemory_over_dataloader: {dataloader_iteration / memory_iteration:.2f}")

if __name__ == "__main__":
    main()
