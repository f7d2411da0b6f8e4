"""Which MNIST training settings (lr x batch)? A choice made on TRAINING digits only.

The localisation test digits of ``vaecam localize mnist`` are the held-out 10% of the trained
class (``one_class_split``); this script never reads them. It splits the remaining training
digits of each class once more (seeded): 90% to train on, 10% held out. For every lr x batch it
trains 3 seeds for 30 epochs on the inner 90% with the cpu preset's model and loss, and measures
on the inner held-out digits:

* the rule, fixed before any result was seen: the attention criterion that ``--tune`` uses to
  choose map options (mean of pixel AUROC and AUPRO on CutPaste anomalies made from the
  held-out training digits), of the best attention setting, averaged over seeds and both
  digits; the highest mean wins;
* beside it, for health: the summed BCE of the posterior mean's reconstruction plus the KL per
  digit (a deterministic stand-in for the negative ELBO), the KL, active latent units and the
  least-alive encoder layer.

Writes OUT/choice.md, OUT/choice.json and prints the table and the winner.

    python scripts/mnist_training_choice.py --out runs/mnist_choice      # ~30 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from vaecam.data.mnist import load_digits, one_class_split
from vaecam.experiments.localization.config import LocalizationConfig
from vaecam.experiments.localization.run import tune
from vaecam.experiments.mnist import MNIST_LAYERS, MODEL, SPLIT_SEED
from vaecam.metrics.encoder_health import model_health
from vaecam.models.base import eval_mode
from vaecam.training.checkpoints import load_model
from vaecam.training.module import VAEModule
from vaecam.training.trainer import TrainConfig, best_checkpoint, fit

INNER_SPLIT_SEED = 1  # the inner split of the training digits (SPLIT_SEED makes the test split)
SEEDS = (0, 1, 2)
GRID = [(3e-4, 32), (3e-4, 128), (1e-3, 32), (1e-3, 128)]


def inner_split(digit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inner training digits, inner held-out digits), both from the class's training split."""
    train = one_class_split(load_digits(), digit, seed=SPLIT_SEED).train
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(INNER_SPLIT_SEED))
    n_held = round(0.1 * len(train))
    return train[order[n_held:]], train[order[:n_held]]


def train(digit: int, lr: float, batch: int, seed: int, inner: torch.Tensor,
          held: torch.Tensor, out: Path, epochs: int) -> torch.nn.Module:
    """Train (or reuse) one model on the inner training digits; returns its best checkpoint's
    model (best by loss on the inner held-out digits, as ``vaecam train mnist`` does)."""
    run = out / f"digit{digit}_lr{lr:g}_batch{batch}" / f"seed{seed}"
    done = run / "checkpoints" / "best.ckpt"
    if not done.exists():
        module = VAEModule(MODEL, {"latent_dim": 32}, lr=lr, seed=seed)
        cfg = TrainConfig(out_dir=run, max_epochs=epochs, batch_size=batch, seed=seed,
                          accelerator="cpu", progress_bar=False, log_every_n_steps=50,
                          checkpoint_every_n_epochs=epochs, resume=run.exists())
        fit(module, TensorDataset(inner), cfg, val_set=TensorDataset(held),
            data={"kind": "mnist-inner-split", "digit": digit, "n_train": len(inner),
                  "inner_split_seed": INNER_SPLIT_SEED})
    model, _ = load_model(best_checkpoint(run))
    return model.eval()


@torch.no_grad()
def health(model: torch.nn.Module, held: torch.Tensor) -> dict[str, float]:
    """BCE of the posterior mean's reconstruction plus KL per digit (``neg_elbo``, a stand-in for
    the negative ELBO), KL, active units and the least-alive encoder layer's alive fraction."""
    record = model_health(model, held)
    with eval_mode(model):
        mu, _ = model.encode(held)
        bce = F.binary_cross_entropy(model.decode(mu).clamp(1e-6, 1 - 1e-6), held,
                                     reduction="sum") / len(held)
    return {"neg_elbo": float(bce) + record["kl"], "kl": record["kl"],
            "active_units": record["active_units"], "hidden_alive": record["hidden_alive"]}


def attention_criterion(models: dict[int, torch.nn.Module], held: torch.Tensor) -> dict:
    """The best attention setting on CutPaste anomalies of ``held`` (``--tune``'s rule)."""
    cfg = LocalizationConfig(layers=dict(MNIST_LAYERS), maps="attention", tune=True,
                             tune_images=64)
    record = tune(cfg, models, {seed: None for seed in models}, held, torch.device("cpu"), 64)
    attention = record["families"]["attention"]
    best = attention["candidates"][attention["best"]]
    return {"setting": attention["chosen_setting"], "mean": best["mean"],
            "per_seed": best["per_seed"]}


def units(values: list[int]) -> str:
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}-{high}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--digits", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--epochs", type=int, default=30, help="the cpu preset's 30")
    args = parser.parse_args()
    rows = []
    for lr, batch in GRID:
        for digit in args.digits:
            inner, held = inner_split(digit)
            models = {s: train(digit, lr, batch, s, inner, held, args.out,
                                    args.epochs) for s in SEEDS}
            crit = attention_criterion(models, held)
            fits = [health(m, held) for m in models.values()]
            rows.append({"lr": lr, "batch": batch, "digit": digit, "n_inner": len(inner),
                         "n_held_out": len(held), "attention": crit,
                         "health": fits})
            print(f"lr {lr:g} batch {batch} digit {digit}: {crit['setting']} "
                  f"{crit['mean']:.3f}; BCE + KL {np.mean([f['neg_elbo'] for f in fits]):.1f}",
                  flush=True)
    summary = []
    for lr, batch in GRID:
        mine = [r for r in rows if (r["lr"], r["batch"]) == (lr, batch)]
        per_seed = [v for r in mine for v in r["attention"]["per_seed"]]
        fits = [f for r in mine for f in r["health"]]
        summary.append({
            "lr": lr, "batch": batch, "criterion_mean": float(np.mean(per_seed)),
            "criterion_std": float(np.std(per_seed, ddof=1)),
            "neg_elbo": float(np.mean([f["neg_elbo"] for f in fits])),
            "kl": float(np.mean([f["kl"] for f in fits])),
            "active_units": [f["active_units"] for f in fits],
            "hidden_alive_min": float(min(f["hidden_alive"] for f in fits)),
            "settings": {r["digit"]: r["attention"]["setting"] for r in mine}})
    winner = max(summary, key=lambda s: s["criterion_mean"])
    lines = ["| lr | batch | attention criterion (mean ± std over digits x seeds) | "
             "BCE at mu + KL per digit | KL (nats) | active units | "
             "least-alive encoder layer (min) | best attention per digit |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summary:
        mark = " **chosen**" if s is winner else ""
        settings = "; ".join(f"{d}: {v}" for d, v in s["settings"].items())
        lines.append(f"| {s['lr']:g} | {s['batch']}{mark} | {s['criterion_mean']:.3f} ± "
                     f"{s['criterion_std']:.3f} | {s['neg_elbo']:.1f} | {s['kl']:.1f} | "
                     f"{units(s['active_units'])} of 32 | "
                     f"{s['hidden_alive_min']:.0%} | {settings} |")
    table = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "choice.md").write_text(table + "\n")
    (args.out / "choice.json").write_text(json.dumps({"rows": rows, "summary": summary,
                                                      "winner": winner}, indent=2))
    print(table)
    print(f"chosen on training digits: lr {winner['lr']:g}, batch {winner['batch']}")


if __name__ == "__main__":
    main()
