"""One training run per seed: ``OUT/seed<S>/`` run folders under one output folder.

Every training experiment takes a list of seeds and trains one model per seed, each in its own
resumable run folder; localisation and scoring find the seeds' runs again from ``OUT`` and
aggregate over them (mean, std, intervals, verdicts).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from vaecam.errors import ConfigError
from vaecam.outputs import OutputFolder
from vaecam.training.run_folder import last_checkpoint
from vaecam.training.trainer import TrainConfig

_SEED_DIR = re.compile(r"seed(\d+)")


def seed_dir(out: Path, seed: int) -> Path:
    return Path(out) / f"seed{seed}"


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """Seeds as a list of distinct non-negative ints; one-line errors otherwise."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("--seeds needs at least one seed, e.g. --seeds 0 1 2")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ConfigError(f"--seeds repeats {', '.join(map(str, repeated))}; give each seed once")
    negative = [s for s in seeds if s < 0]
    if negative:
        raise ConfigError(f"--seeds must be non-negative, not {negative[0]}")
    return seeds


def train_each_seed(train_one: Callable[[TrainConfig], Path], cfg: TrainConfig,
                    seeds: Sequence[int], inputs: Sequence[Path] = (),
                    announce: Callable[[str], None] = print) -> dict[int, Path]:
    """Run ``train_one`` for every seed in ``cfg.out_dir/seed<S>``; returns seed -> last.ckpt.

    With ``cfg.resume`` a seed whose folder holds a checkpoint continues it and a seed without
    one starts fresh (replacing what a run killed before its first checkpoint wrote there, and
    only that), so an interrupted multi-seed run resumes where it stopped.
    """
    seeds = check_seeds(seeds)
    results: dict[int, Path] = {}
    with OutputFolder(cfg.out_dir, f"train {cfg.experiment}", inputs, overwrite=cfg.overwrite,
                      keep=cfg.resume):
        for k, seed in enumerate(seeds, 1):
            run_dir = seed_dir(cfg.out_dir, seed)
            resume = cfg.resume and last_checkpoint(run_dir).is_file()
            if len(seeds) > 1:
                announce(f"seed {seed} (run {k}/{len(seeds)}): {run_dir}")
            run_cfg = dataclasses.replace(cfg, out_dir=run_dir, seed=seed, resume=resume,
                                          overwrite=cfg.resume and not resume)
            results[seed] = train_one(run_cfg)
    return results


def seed_runs(folder: Path) -> dict[int, Path]:
    """seed -> run folder for the ``seed<S>`` folders with a last checkpoint under ``folder``."""
    folder = Path(folder)
    found = {}
    if folder.is_dir():
        for child in folder.iterdir():
            match = _SEED_DIR.fullmatch(child.name)
            if match and child.is_dir() and last_checkpoint(child).is_file():
                found[int(match.group(1))] = child
    return dict(sorted(found.items()))


def resolve_checkpoints(path: Path, seeds: Sequence[int] | None = None,
                        best: bool = False) -> dict[int, Path]:
    """seed -> checkpoint for a ``.ckpt`` file, a run folder, or a multi-seed training folder.

    A file or a run folder is one model (its seed read from the checkpoint, else 0); a folder of
    ``seed<S>`` runs gives every seed, or those in ``seeds``. ``best`` takes ``best.ckpt``
    instead of ``last.ckpt`` from run folders.
    """
    from vaecam.training.checkpoints import read_checkpoint
    from vaecam.training.run_folder import best_checkpoint

    path = Path(path)
    pick = best_checkpoint if best else last_checkpoint
    if path.is_dir() and not (path / "checkpoints").is_dir():
        runs = seed_runs(path)
        if not runs:
            raise ConfigError(f"{path} holds no training run (no checkpoints/ and no seed<S>/ "
                              "run folders); pass a .ckpt file or a 'vaecam train' --out folder")
        if seeds:
            missing = [s for s in seeds if s not in runs]
            if missing:
                raise ConfigError(f"{path} has no run for seed {missing[0]}; seeds there: "
                                  f"{', '.join(map(str, runs))}")
            runs = {s: runs[s] for s in seeds}
        return {seed: pick(run) for seed, run in runs.items()}
    checkpoint = pick(path) if path.is_dir() else path
    seed = int(read_checkpoint(checkpoint)["vaecam"].get("seed", 0) or 0)
    if seeds and seed not in seeds:
        raise ConfigError(f"{checkpoint} is the model of seed {seed}, not of --seeds "
                          f"{' '.join(map(str, seeds))}")
    return {seed: checkpoint}


def single_checkpoint(path: Path) -> Path:
    """The one checkpoint of a ``.ckpt`` file, a run folder or a one-seed training folder; a
    folder with several seeds' runs is an error naming them."""
    found = resolve_checkpoints(path)
    if len(found) > 1:
        seeds = ", ".join(map(str, found))
        raise ConfigError(f"{path} holds the runs of seeds {seeds}; pass one of them, e.g. "
                          f"{Path(path) / f'seed{next(iter(found))}'}")
    return next(iter(found.values()))
