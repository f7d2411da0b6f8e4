"""Summarise the MNIST sensitivity study (scripts/mnist_sensitivity.sh) as Markdown tables.

Usage: python scripts/summarize_mnist_sensitivity.py OUT  ->  prints the tables; writes
OUT/sensitivity.json and OUT/sensitivity.png (pixel AUROC per setting and training config).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from matplotlib.figure import Figure

from vaecam.report.localization import cell_text, verdict_text


def main(out: Path) -> None:
    runs = sorted(out.glob("digit*_lr*_batch*/localize/results.json"))
    table: dict[str, dict[str, dict]] = {}
    for path in runs:
        config = path.parent.parent.name
        results = json.loads(path.read_text())
        table[config] = {s["name"]: s for s in results["settings"]}
        table[config]["_latent"] = results["latent"]
        table[config]["_tuning"] = results.get("tuning", {})
    names = [n for n in next(iter(table.values())) if not n.startswith("_")]
    for digit in ("1", "3"):
        configs = [c for c in table if c.startswith(f"digit{digit}_")]
        if not configs:
            continue
        print(f"\n### Trained on {digit}: pixel AUROC, mean ± std over 3 seeds [95% interval]"
              " (verdict against recon-abs)\n")
        print("| setting | " + " | ".join(c.split("_", 1)[1] for c in configs) + " |")
        print("|---|" + "---|" * len(configs))
        for name in names:
            cells = []
            for c in configs:
                metric = table[c][name]["metrics"]["pixel_auroc"]
                verdict = verdict_text(metric)
                cells.append(cell_text(metric) + ("" if verdict == "–" else f" ({verdict})"))
            print(f"| {name} | " + " | ".join(cells) + " |")
        print("| active units (per seed) | " + " | ".join(
            ", ".join(str(h["active_units"]) for h in table[c]["_latent"].values())
            for c in configs) + " |")
        print("| attention chosen on training data | " + " | ".join(
            table[c]["_tuning"].get("families", {}).get("attention", {}).get("chosen_setting",
                                                                             "–")
            for c in configs) + " |")
    fig = Figure(figsize=(12, 4.5))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, digit in zip(axes, ("1", "3"), strict=True):
        configs = [c for c in table if c.startswith(f"digit{digit}_")]
        for k, c in enumerate(configs):
            means = [table[c][n]["metrics"]["pixel_auroc"]["mean"] for n in names]
            stds = [table[c][n]["metrics"]["pixel_auroc"]["std"] for n in names]
            ax.errorbar([i + 0.15 * k for i in range(len(names))], means, yerr=stds, fmt="o",
                        ms=3, label=c.split("_", 1)[1])
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=6)
        ax.set_title(f"trained on {digit}")
        ax.axhline(0.5, color="gray", lw=0.8, ls="--")
    axes[0].set_ylabel("pixel AUROC (mean ± std over seeds)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "sensitivity.png", dpi=120)
    (out / "sensitivity.json").write_text(json.dumps(
        {c: {n: table[c][n]["metrics"] for n in names} for c in table}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
