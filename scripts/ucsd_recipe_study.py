"""Which UCSD recipe keeps the VAE alive? A study on TRAINING clips only.

Trains each recipe of :data:`vaecam.models.ucsd.RECIPES` with the cpu preset's optimiser (Adam,
lr 1e-4, batch 32, 100x100 frames) on the training clips minus the held-out ones (default
Train015 and Train016) and, every ``--every`` steps, measures on the held-out training clips: the
KL per frame, active latent units, every encoder layer's alive fraction (on a fixed probe of 100
training frames), the squared reconstruction error per pixel and the seconds per step. No test
frame and no mask is read. Writes one CSV row per evaluation, a markdown summary and a figure
of the curves.

    python scripts/ucsd_recipe_study.py --data ../shared/data/ucsd/UCSDped2 --steps 200 \\
        --recipes paper standardized live --seeds 0 --out study/
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch
from matplotlib.figure import Figure

from vaecam.data.ucsd import UCSDTrainFrames
from vaecam.metrics.encoder_health import model_health
from vaecam.models import build_model
from vaecam.models.base import eval_mode
from vaecam.models.ucsd import RECIPES
from vaecam.training.module import seeded_init, step_generator

FIELDS = ["recipe", "seed", "step", "seconds_per_step", "train_loss", "heldout_kl",
          "active_units", "hidden_alive", "hidden_layer", "mu_std", "heldout_mse"]


def split_frames(root: Path, size: int, held_out: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(training frames, held-out frames) of the Train clips, split by clip name."""
    frames = UCSDTrainFrames(root, size)
    images = frames.stacked()
    held = torch.tensor([f.clip in held_out for f in frames.frames])
    if not held.any() or held.all():
        raise SystemExit(f"held-out clips {held_out} leave no frame on one side; name others")
    return images[~held], images[held]


@torch.no_grad()
def evaluate(model: torch.nn.Module, probe: torch.Tensor, heldout: torch.Tensor) -> dict:
    """Health on the probe and fit on the held-out clips (eval mode, restored)."""
    health = model_health(model, probe)
    held = model_health(model, heldout)
    with eval_mode(model):
        mu, _ = model.encode(heldout)
        mse = float((model.decode(mu) - heldout).pow(2).mean())
    return {"heldout_kl": held["kl"], "active_units": held["active_units"],
            "hidden_alive": health["hidden_alive"], "hidden_layer": health["hidden_layer"],
            "mu_std": held["mu_std"], "heldout_mse": mse}


def run(recipe: str, seed: int, train: torch.Tensor, heldout: torch.Tensor, steps: int,
        every: int, lr: float, batch: int) -> list[dict]:
    """Train one recipe from ``seed`` and return its evaluation rows."""
    with seeded_init(seed):
        model = build_model("ucsd-vae", input_shape=list(train.shape[1:]), **RECIPES[recipe])
    model.fit_data(train)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    draws = torch.Generator().manual_seed(seed)
    probe = train[torch.randperm(len(train), generator=draws)[:100]]
    rows = [{"recipe": recipe, "seed": seed, "step": 0, "seconds_per_step": None,
             "train_loss": None, **evaluate(model, probe, heldout)}]
    start = time.perf_counter()
    for step in range(1, steps + 1):
        x = train[torch.randint(len(train), (batch,), generator=draws)]
        out = model(x, generator=step_generator(seed, step, 0, x.device))
        loss = model.loss(out, x).total
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % every == 0 or step == steps:
            rows.append({"recipe": recipe, "seed": seed, "step": step,
                         "seconds_per_step": (time.perf_counter() - start) / step,
                         "train_loss": float(loss.detach()), **evaluate(model, probe, heldout)})
            print({k: v for k, v in rows[-1].items()}, flush=True)
    return rows


def plot(rows: list[dict], path: Path, images: str = "held-out frame") -> None:
    """KL, active units and least-alive layer along training, one line per run."""
    panels = [("heldout_kl", f"KL per {images} (nats)"), ("active_units", "active units"),
              ("hidden_alive", "least-alive encoder layer (fraction)")]
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, len(panels))
    runs = sorted({(r["recipe"], r["seed"]) for r in rows})
    colours = dict(zip(sorted({r for r, _ in runs}), ["#0072B2", "#D55E00", "#009E73",
                                                      "#CC79A7", "#E69F00"], strict=False))
    for ax, (key, label) in zip(axes, panels, strict=True):
        for recipe, seed in runs:
            points = [(r["step"], r[key]) for r in rows
                      if (r["recipe"], r["seed"]) == (recipe, seed)]
            ax.plot(*zip(*points, strict=True), marker="o", ms=3, color=colours[recipe],
                    label=f"{recipe} (seed {seed})")
        ax.set_xlabel("training step")
        ax.set_title(label, fontsize=9)
        if key == "heldout_kl":  # a BatchNorm model in eval mode can spike by orders of magnitude
            ax.set_yscale("symlog", linthresh=1)
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.savefig(path, dpi=120)


def summary(rows: list[dict]) -> str:
    """A markdown table: each run's values at its first and last evaluation after step 0."""
    lines = ["| recipe | seed | step | KL per held-out frame (nats) | active units | "
             "least-alive encoder layer | squared error per pixel (held-out) | s / step |",
             "|---|---|---|---|---|---|---|---|"]
    for recipe, seed in dict.fromkeys((r["recipe"], r["seed"]) for r in rows):
        run_rows = [r for r in rows if (r["recipe"], r["seed"]) == (recipe, seed) and r["step"]]
        for r in (run_rows[0], run_rows[-1]) if len(run_rows) > 1 else run_rows:
            lines.append(f"| {recipe} | {seed} | {r['step']} | {r['heldout_kl']:.2f} | "
                         f"{r['active_units']} | {r['hidden_alive']:.0%} ({r['hidden_layer']}) | "
                         f"{r['heldout_mse']:.6f} | {r['seconds_per_step']:.1f} |")
    return "\n".join(lines)


def run_rows(runs: list[Path]) -> list[dict]:
    """Per-epoch health rows of trained run folders (``OUT/seed<S>``), read from their CSV logs:
    the same panels for ``vaecam train`` runs (KL and alive fractions on training frames)."""
    rows = []
    for run in runs:
        for log in sorted(run.glob("logs/csv/*/metrics.csv")):
            for r in csv.DictReader(open(log)):
                if r.get("latent/kl"):
                    rows.append({"recipe": run.parent.name, "seed": run.name,
                                 "step": int(r["step"]),
                                 "heldout_kl": float(r["latent/kl"]),
                                 "active_units": float(r["latent/active_units"]),
                                 "hidden_alive": float(r["encoder/hidden_alive"])})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="UCSDped1 or UCSDped2 folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for study.csv and figure")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--every", type=int, default=40)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--held-out", nargs="+", default=["Train015", "Train016"])
    parser.add_argument("--runs", nargs="+", type=Path,
                        help="plot the health logs of these trained run folders instead")
    args = parser.parse_args()
    if args.runs:
        args.out.mkdir(parents=True, exist_ok=True)
        plot(run_rows(args.runs), args.out / "runs.png", "training frame (probe)")
        print(f"figure: {args.out / 'runs.png'}")
        return
    if args.data is None:
        parser.error("--data is required for a study (or give --runs)")
    torch.set_num_threads(1)
    train, heldout = split_frames(args.data, args.size, args.held_out)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [row for recipe in args.recipes for seed in args.seeds
            for row in run(recipe, seed, train, heldout, args.steps, args.every, args.lr,
                           args.batch_size)]
    with open(args.out / "study.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out / "study.png")
    (args.out / "study.md").write_text(summary(rows) + "\n")
    print(summary(rows))
    print(f"study: {args.out / 'study.csv'}, {args.out / 'study.png'}")


if __name__ == "__main__":
    main()
