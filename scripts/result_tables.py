"""Regenerate the result tables of README.md and docs/results.md from the committed reports'
results.json.

    python scripts/result_tables.py           # rewrite the marked blocks of both files
    python scripts/result_tables.py --check   # exit 1 when a file differs from the data

Each block sits between ``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated: NAME -->``.
README.md holds ``findings`` and ``results``; docs/results.md holds ``mnist-protocols`` and one
localisation table per dataset, ``<experiment>-<dataset>`` (UCSD: ``-<recipe>`` appended).
Sources, each superseding the ones before it for the same dataset (and, for UCSD, recipe):
``docs/report/results.json`` (dSprites; the first MNIST runs), ``docs/report/claim2_dec01`` (UCSD
Ped2 with the paper's architecture and MVTec-AD screw, 3 seeds), ``docs/report/claim2`` (MNIST
with the pasted, erased and in-digit protocols and UCSD Ped2 with the live recipe, 3 seeds) and
``docs/report/claim2_ped2_paper`` (UCSD Ped2 with the paper's architecture again, 3 seeds, with
the trivial references and two-level brackets).
Every word that depends on a number (verdicts, "highest", "collapsed") is computed here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vaecam.configs import load_preset
from vaecam.experiments.dsprites import (
    PAIRED_HEADERS,
    PER_SEED_HEADERS,
    paired_rows,
    per_seed_rows,
)
from vaecam.maps.registry import latent_families
from vaecam.maps.setting import Setting
from vaecam.report.document import mean_std
from vaecam.report.localization import cell_text, is_win, verdict_text
from vaecam.report.references import (
    DSPRITES_FACTORVAE_SCORE,
    MVTEC_PIXEL,
    UCSD_PED1_PIXEL_AUROC,
)
from vaecam.report.table import Table
from vaecam.reproduce.report import BASELINE, constant_map

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "docs/report/results.json"
CLAIM2 = tuple(ROOT / "docs/report" / name / "results.json"
               for name in ("claim2_dec01", "claim2", "claim2_ped2_paper"))
CLAIM3 = ROOT / "docs/report/claim3/results.json"
README = ROOT / "README.md"
RESULTS_DOC = ROOT / "docs/results.md"
BLOCK = re.compile(r"(<!-- BEGIN generated: (?P<name>[\w-]+) -->\n)(?:.*?\n)?(<!-- END generated: "
                   r"(?P=name) -->)", re.S)


# --- reading the reports ------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def recipe(report: Mapping[str, Any], experiment: str, dataset: str) -> str | None:
    """The UCSD model recipe a report trained with (``paper`` before recipes existed)."""
    if experiment != "ucsd":
        return None
    return train_config(report, experiment, dataset).get("recipe", "paper")


def datasets(reports: Sequence[Mapping[str, Any]]
             ) -> list[tuple[str, str, Mapping[str, Any], Mapping[str, Any]]]:
    """(experiment, dataset, cells, report) for every localisation; a later report supersedes
    an earlier one's run of the same dataset (for UCSD: the same dataset and recipe)."""
    latest: dict[tuple[str, str, str | None], tuple] = {}
    order = {"mnist": 0, "ucsd": 1, "mvtec": 2}
    for report in reports:
        for experiment, per in report["experiments"].items():
            if experiment == "dsprites" or not per:
                continue
            for dataset, cells in per.items():
                if cells:
                    key = (experiment, dataset, recipe(report, experiment, dataset))
                    latest.pop(key, None)  # the newer run takes the later place
                    latest[key] = (experiment, dataset, cells, report)
    return sorted(latest.values(), key=lambda row: order.get(row[0], 3))


def family(name: str) -> str:
    """The map family of a row label (the report keeps only the labels)."""
    return Setting.parse(name).family


def live_units(cells: Mapping[str, Any]) -> str:
    """``29-30 of 32`` live (active) latent units over seeds."""
    units = [h["active_units"] for h in cells["latent"].values()]
    dim = next(iter(cells["latent"].values()))["latent_dim"]
    span = f"{min(units)}" if min(units) == max(units) else f"{min(units)}-{max(units)}"
    return f"{span} of {dim}"


def train_config(report: Mapping[str, Any], experiment: str, dataset: str) -> Mapping[str, Any]:
    """The resolved configuration of the first training stage of a dataset."""
    trained_on = dataset.split("_")[0] if experiment == "mnist" else dataset  # digit1_erased
    for name, stage in report["stages"].items():
        if stage["kind"] == "train" and name.startswith(experiment) and (
                f"/{trained_on}/" in name or experiment == "dsprites"):
            return stage["config"]
    raise KeyError(f"no train stage for {experiment} {dataset}")


# The MNIST training settings that scripts/mnist_training_choice.py chose on held-out training
# digits (docs/results.md); the earlier lr 1e-3 was chosen on the test digits.
MNIST_TRAINING_CHOICE = {"lr": 3e-4, "batch_size": 128}


def mnist_training(report: Mapping[str, Any], dataset: str) -> str:
    """Which data the MNIST run's lr and batch were chosen on, read from its training stage."""
    config = train_config(report, "mnist", dataset)
    lr, batch = float(config["lr"]), int(config["batch_size"])
    chosen = ("held-out training digits"
              if {"lr": lr, "batch_size": batch} == MNIST_TRAINING_CHOICE
              else "the test digits (sensitivity study)")
    return f"lr {lr:g} and batch {batch} chosen on {chosen}"


def paper_budget(experiment: str) -> Mapping[str, Any]:
    """The options of the experiment's ``paper`` preset, flat."""
    return load_preset(experiment, "paper").options


def with_options(name: str, cells: Mapping[str, Any]) -> str:
    """``recon-smooth (smooth_sigma=8)``: a map with the options chosen on training data."""
    options = cells["switches"].get("chosen_on_training_data", {}).get(name)
    if not options or family(name) == "attention":
        return f"`{name}`"
    shown = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in options.items() if k != "grad_norm")
    return f"`{name}` ({shown})"


def collapsed(cells: Mapping[str, Any], name: str) -> bool:
    return bool(cells["collapsed_seeds"]) and family(name) in latent_families()


# --- the rules behind the words -----------------------------------------------------------------


def references(cells: Mapping[str, Any]) -> set[str]:
    """The trivial reference maps of a run (none in runs from before they existed)."""
    return set(cells["switches"].get("trivial_references", ()))


def highest_beyond_the_paper(cells: Mapping[str, Any], metric: str = "pixel_auroc"
                             ) -> str | None:
    """The map beyond the paper (neither the baseline, attention nor a trivial reference) with
    the highest mean ``metric``; constant maps (AUROC exactly 0.5 everywhere) are left out."""
    scored = {n: m[metric] for n, m in cells["cells"].items()
              if n != BASELINE and n not in references(cells) and family(n) != "attention"
              and m.get(metric) and not constant_map(m[metric])}
    return max(scored, key=lambda n: float(scored[n]["mean"]), default=None)


def wins(cells: Mapping[str, Any]) -> list[str]:
    """Maps ``better`` than the baseline and than the better trivial reference on pixel AUROC
    and AUPRO (:func:`~vaecam.report.localization.is_win`)."""
    chosen = cells["switches"]["attention_chosen_on_training_data"]
    return [n for n, m in cells["cells"].items()
            if n != BASELINE and n not in references(cells) and is_win({"metrics": m})
            and (family(n) != "attention" or n == chosen)]  # the grid's other rows: not chosen


def better_than_baseline(cells: Mapping[str, Any]) -> list[str]:
    """For runs without trivial references: maps ``better`` than the baseline on both."""
    return [n for n, m in cells["cells"].items() if n != BASELINE and all(
        verdict_text(m.get(k)) == "better" for k in ("pixel_auroc", "aupro"))]


def claim2_row_verdict(cells: Mapping[str, Any], cell: Mapping[str, Any]) -> str:
    """Per dataset: no evidence when the latent collapsed; reproduced only when the map is
    ``better`` than both the baseline and the better trivial reference (a win)."""
    if cells["collapsed_seeds"]:
        return "no evidence (latent collapsed)"
    base, trivial = verdict_text(cell), verdict_text(cell, "vs_trivial")
    if trivial == "–":  # a run from before the trivial references
        return "reproduced vs recon-abs; no trivial reference in this run" if base == "better" \
            else f"not reproduced (`{base}`)"
    reference = cell["vs_trivial"]["reference"]
    if base == trivial == "better":
        return f"reproduced (`better` than {BASELINE} and {reference})"
    word = "not reproduced" if "worse" in (base, trivial) else "inconclusive"
    return f"{word} (`{base}` vs {BASELINE}, `{trivial}` vs {reference})"


def claim1_row_verdict(cell: Mapping[str, Any]) -> str:
    """Attention localises the strokes when its interval lies above chance (0.5)."""
    above = float(cell["ci95"][0]) > 0.5
    return ("reproduced: above chance" if above else "not reproduced: not above chance") + (
        f", `{verdict_text(cell)}` than {BASELINE}")


def claim3_row_verdict(verdict: str) -> str:
    return {"better": "reproduced", "worse": "not reproduced"}.get(
        verdict, f"inconclusive (`{verdict}`)")


# --- the tables ---------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return str(Table(headers, rows)).rstrip("\n")


def _vaecam(cells: Mapping[str, Any], name: str, cell: Mapping[str, Any]) -> str:
    text = (f"`{name.removeprefix('attention ')}` {cell_text(cell)}, {len(cells['seeds'])} seeds; "
            f"{BASELINE} {float(cells['cells'][BASELINE]['pixel_auroc']['mean']):.3f}")
    trivial = cell.get("vs_trivial")
    if trivial:
        reference = trivial["reference"]
        text += f", {reference} {float(cells['cells'][reference]['pixel_auroc']['mean']):.3f}"
    return f"{text}; {health(cells)}"


def health(cells: Mapping[str, Any]) -> str:
    """``live units 32 of 32, least-alive encoder layer 100%`` over seeds."""
    text = f"live units {live_units(cells)}"
    alive = [h["hidden_alive"] for h in cells["latent"].values() if "hidden_alive" in h]
    if alive:
        text += f", least-alive encoder layer {100 * min(alive):.0f}%"
    return text


def _epochs(report: Mapping[str, Any], experiment: str, dataset: str) -> str:
    ours = train_config(report, experiment, dataset)["max_epochs"]
    return f"{ours} instead of {paper_budget(experiment)['max_epochs']:,} epochs"


def findings(main: Mapping[str, Any], claim2: Sequence[Mapping[str, Any]],
             claim3: Mapping[str, Any]) -> str:
    """claim | paper | seed reproduction | vaecam | verdict | caveat, one row per dataset (claim 3:
    per gamma)."""
    rows = []
    for experiment, dataset, cells, report in datasets([main, *claim2]):
        chosen = "options chosen on CutPaste anomalies of training images" if cells[
            "switches"].get("tune") else "options chosen on the test images"
        if experiment == "mnist" and "_" in dataset:  # a harder protocol: digit1_erased
            rows.append(_protocol_row(dataset, cells, report, chosen))
            continue
        if experiment == "mnist":
            layer = next(iter(cells["switches"]["layers"]))
            name = f"attention {layer} m1 relu"
            cell = cells["cells"][name]["pixel_auroc"]
            rows.append([
                f"1. attention shows what the VAE encodes (MNIST, trained on "
                f"{dataset.removeprefix('digit')})",
                "qualitative (Figures 1-2), no number", "confirmed, qualitatively; no number",
                _vaecam(cells, name, cell), claim1_row_verdict(cell),
                f"no published number: vaecam's test (held-out digits with a pasted stroke); "
                f"the paper's setting (method 1, ReLU, {layer}); "
                f"{_epochs(report, experiment, dataset)}; {mnist_training(report, dataset)}"])
            continue
        name = cells["switches"]["attention_chosen_on_training_data"]
        cell = cells["cells"][name]["pixel_auroc"]
        size = train_config(report, experiment, dataset).get("image_size")
        if experiment == "ucsd":
            best = max(UCSD_PED1_PIXEL_AUROC.items(), key=lambda kv: kv[1]["paper"]
                       if kv[0] != "baseline" else -1)
            repro = max(v for k, r in UCSD_PED1_PIXEL_AUROC.items() if k != "baseline"
                        for c, v in r.items() if c != "paper")
            paper_cell = f"Ped1 {best[1]['paper']:.2f} ({best[0]}; baseline " \
                         f"{UCSD_PED1_PIXEL_AUROC['baseline']['paper']:.2f})"
            repro_cell = f"Ped1 {repro:.2f} (baseline " \
                         f"{UCSD_PED1_PIXEL_AUROC['baseline']['repro 1 relu']:.2f})"
            caveat = (f"{_ped(dataset)} instead of Ped1 (the papers'); "
                      f"{_epochs(report, experiment, dataset)}; {chosen}")
            if recipe(report, experiment, dataset) != "paper":
                caveat += ("; a model recipe beyond the paper, chosen on held-out training "
                           "clips (docs/ucsd-recipe.md)")
        else:
            paper, relu, absolute = MVTEC_PIXEL[dataset][:3]
            paper_cell, repro_cell = f"{paper:.2f}", f"{max(relu, absolute):.2f}"
            caveat = (f"{size} px instead of {paper_budget(experiment)['image_size']}; "
                      f"{_epochs(report, experiment, dataset)}; one category of 15; {chosen}")
        where = (f"UCSD {_ped(dataset)}, {_recipe_label(report, dataset)}"
                 if experiment == "ucsd" else f"MVTec-AD {dataset}")
        rows.append([f"2. attention localises anomalies ({where}, pixel AUROC)", paper_cell,
                     repro_cell, _vaecam(cells, name, cell), claim2_row_verdict(cells, cell),
                     caveat])
    rows.sort(key=lambda row: row[0][0])  # by claim; datasets keep their order within one
    rows += _claim3_rows(claim3)
    return _table(["claim", "paper", "seed reproduction", "vaecam (mean ± std [95% interval])",
                   "verdict", "caveat"], rows)


def _recipe_label(report: Mapping[str, Any], dataset: str) -> str:
    name = recipe(report, "ucsd", dataset)
    return "the paper's architecture" if name == "paper" else f"recipe `{name}`"


PROTOCOLS = {"erased": "the end of a stroke erased (missing ink)",
             "in-digit": "a stroke of the digit's own intensity drawn inside its box"}


def _protocol_row(dataset: str, cells: Mapping[str, Any], report: Mapping[str, Any],
                  chosen: str) -> list[str]:
    """A claim-2 row for vaecam's harder MNIST protocols, which neither paper ran."""
    digit, protocol = dataset.removeprefix("digit").split("_", 1)
    name = cells["switches"]["attention_chosen_on_training_data"]
    cell = cells["cells"][name]["pixel_auroc"]
    region = cells["switches"].get("region", "image")
    return [f"2. attention localises anomalies (MNIST, trained on {digit}, {protocol}, "
            f"pixel AUROC)", "not in the paper", "not in the study",
            _vaecam(cells, name, cell), claim2_row_verdict(cells, cell),
            f"vaecam's protocol: held-out digits with {PROTOCOLS[protocol]}; scored in "
            f"{'the digit box' if region == 'digit-box' else 'the whole image'}; "
            f"{_epochs(report, 'mnist', dataset)}; {mnist_training(report, dataset)}; {chosen}"]


def _claim3_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """One row per gamma: both arms' FactorVAE metric, the paired difference with its seed
    bootstrap interval and Wilcoxon p, and the verdict of the across-seed test."""
    data = report["experiments"].get("dsprites")
    if not data or not data.get("paired"):
        return []
    steps = paper_budget("dsprites")["max_steps"]
    source = ("procedural dSprites-like renderer, not the official .npz"
              if report["data"]["dsprites"] == "procedural" else "official dSprites")
    rows = []
    for p in data["paired"]:
        test, (low, high) = p["test"], p["test"]["ci95"]
        ad, base = p["ad-factorvae"], p["factorvae"]
        ours = next(int(r["steps"]) for r in data["runs"] if r["gamma"] == p["gamma"])
        wilcoxon = ("" if test["p_value"] is None
                    else f"; Wilcoxon p {test['p_value']:.3g}")
        rows.append([
            f"3. the AD loss improves disentanglement (dSprites, gamma {p['gamma']:g})",
            "AD-FactorVAE above FactorVAE (Kim & Mnih's FactorVAE: "
            f"{_reference('Kim & Mnih')})",
            "not confirmed (the AD loss did not raise the score); a public reproduction: "
            f"FactorVAE {_reference('reproduction FactorVAE')}, AD-FactorVAE "
            f"{_reference('AD-FactorVAE')}",
            f"AD-FactorVAE {mean_std(ad['mean'], ad['std'])} vs FactorVAE "
            f"{mean_std(base['mean'], base['std'])}; paired difference {test['mean_diff']:+.3f} ± "
            f"{test['std']:.3f} [{low:+.3f}, {high:+.3f}], {test['n']} seeds{wilcoxon}",
            claim3_row_verdict(test["verdict"]),
            f"{source}; {ours:,} instead of {steps:,} steps; FactorVAE metric on "
            "a fixed seeded sample"])
    return rows


def _ped(dataset: str) -> str:
    return dataset.replace("UCSDped", "Ped")


def _reference(key: str) -> str:
    return next(v for k, v in DSPRITES_FACTORVAE_SCORE.items() if key in k)


def results(main: Mapping[str, Any], claim2: Sequence[Mapping[str, Any]]) -> str:
    """Per dataset: the chosen attention, the baseline, the map beyond the paper with the
    highest pixel AUROC and the maps better than the baseline on both metrics."""
    rows = []
    for experiment, dataset, cells, report in datasets([main, *claim2]):
        if experiment == "mnist":
            label = f"MNIST, trained on {dataset.removeprefix('digit').replace('_', ', ')}"
        elif experiment == "ucsd":
            label = f"UCSD {_ped(dataset)}, {_recipe_label(report, dataset)}"
        else:
            label = f"MVTec-AD {dataset}"
        label += f" ({len(cells['seeds'])})"
        if cells["collapsed_seeds"]:
            label += ", latent collapsed"
        attention = cells["switches"]["attention_chosen_on_training_data"]
        att = cells["cells"][attention]
        best = highest_beyond_the_paper(cells)
        trivial = att["pixel_auroc"].get("vs_trivial", {}).get("reference")
        if references(cells):
            won = ", ".join(with_options(n, cells) + (" (collapsed latent)" if collapsed(
                cells, n) else "") for n in wins(cells)) or "none"
        else:
            won = ("no trivial reference in this run; better than recon-abs: "
                   + (", ".join(with_options(n, cells) for n in better_than_baseline(cells))
                      or "none"))
        rows.append([
            label,
            health(cells),
            f"`{attention.removeprefix('attention ')}` {_verdicts(att)}"
            + (" (no evidence)" if collapsed(cells, attention) else ""),
            cell_text(cells["cells"][BASELINE]["pixel_auroc"]),
            f"`{trivial}` {cell_text(cells['cells'][trivial]['pixel_auroc'])}" if trivial
            else "–",
            f"{with_options(best, cells)} {_verdicts(cells['cells'][best])}"
            + (" (collapsed latent: no evidence)" if collapsed(cells, best) else "")
            if best else "–",
            won])
    return _table(["data (seeds)", "explained models", "paper's attention, chosen on training "
                   "data (pixel AUROC; verdict vs recon-abs / vs trivial)",
                   "reconstruction error (recon-abs)", "better trivial reference",
                   "highest pixel AUROC beyond the paper",
                   "wins: better than recon-abs and the trivial reference on pixel AUROC and "
                   "AUPRO"], rows)


def _verdicts(metrics: Mapping[str, Any]) -> str:
    cell = metrics["pixel_auroc"]
    text = f"{cell_text(cell)} {verdict_text(cell)}"
    return text + (f" / {verdict_text(cell, 'vs_trivial')}" if "vs_trivial" in cell else "")


# --- docs/results.md -----------------------------------------------------------------------------


def block_name(experiment: str, dataset: str, report: Mapping[str, Any]) -> str:
    """``ucsd-UCSDped2-live``, ``mvtec-screw``: the docs/results.md block of a dataset's table."""
    name = recipe(report, experiment, dataset)
    return f"{experiment}-{dataset}" + (f"-{name}" if name else "")


def _verdict_pair(cell: Mapping[str, Any] | None) -> str:
    return f"{verdict_text(cell)} / {verdict_text(cell, 'vs_trivial')}"


def localisation_table(cells: Mapping[str, Any]) -> str:
    """The explained models' health, then one row per map: the baseline, the trivial references,
    the attention setting chosen on training data, every other map family; verdicts against
    recon-abs / against the better trivial reference."""
    chosen = cells["switches"]["attention_chosen_on_training_data"]
    rows = []
    for name, metrics in cells["cells"].items():
        if family(name) == "attention" and name != chosen:
            continue
        label = with_options(name, cells)
        if name == chosen:
            label += " (chosen on training data)"
        if collapsed(cells, name):
            label += " (collapsed latent: no evidence)"
        rows.append([label, *(cell_text(metrics.get(m)) for m in
                              ("pixel_auroc", "aupro", "best_iou", "image_auroc_max")),
                     _verdict_pair(metrics.get("pixel_auroc")),
                     _verdict_pair(metrics.get("aupro"))])
    table = _table(["map", "pixel AUROC", "AUPRO (FPR<=0.3)", "best IoU", "image AUROC (max)",
                    "verdicts pixel AUROC (vs recon-abs / vs trivial)",
                    "verdicts AUPRO (vs recon-abs / vs trivial)"], rows)
    kl = ", ".join(f"{h['kl']:.3g}" for h in cells["latent"].values())
    return (f"Explained models ({len(cells['seeds'])} seeds): KL {kl} nats per test image; "
            f"{health(cells)}.\n\n{table}")


def mnist_protocols(claim2: Sequence[Mapping[str, Any]]) -> str:
    """One row per MNIST protocol and digit: models, references, the chosen attention, wins."""
    rows = []
    for experiment, dataset, cells, _ in datasets(claim2):
        if experiment != "mnist":
            continue
        digit, _, protocol = dataset.removeprefix("digit").partition("_")
        name = cells["switches"]["attention_chosen_on_training_data"]
        attention = cells["cells"][name]
        rows.append([
            digit, protocol or "pasted", cells["switches"].get("region", "image"), health(cells),
            cell_text(cells["cells"]["mean-diff"]["pixel_auroc"]),
            cell_text(cells["cells"][BASELINE]["pixel_auroc"]),
            f"`{name.removeprefix('attention ')}` {cell_text(attention['pixel_auroc'])}",
            f"{_verdict_pair(attention['pixel_auroc'])}; {_verdict_pair(attention['aupro'])}",
            ", ".join(with_options(n, cells) for n in wins(cells)) or "none"])
    return _table(["trained on", "protocol", "region", "explained models", "mean-diff",
                   "recon-abs", "attention (chosen on training data)",
                   "attention: vs recon-abs / vs mean-diff (pixel AUROC; AUPRO)", "wins"], rows)


# --- writing the blocks --------------------------------------------------------------------------


def blocks(main: Mapping[str, Any], claim2: Sequence[Mapping[str, Any]],
           claim3: Mapping[str, Any]) -> dict[str, str]:
    """README.md's blocks."""
    return {"findings": findings(main, claim2, claim3), "results": results(main, claim2)}


def claim3_tables(report: Mapping[str, Any]) -> str:
    """Each model's scores over seeds, the across-seed test per gamma and every seed's paired
    difference."""
    data = report["experiments"]["dsprites"]
    models = _table(
        ["model", "gamma", "seeds", "FactorVAE metric (mean ± std)", "MIG (mean)",
         "reconstruction error (mean)"],
        [[s["model"], f"{s['gamma']:g}", str(s["runs"]),
          mean_std(s["factorvae_mean"], s["factorvae_std"]), f"{s['mig_mean']:.3f}",
          f"{s['recon_mean']:.1f}"] for s in data["summary"]])
    paired = data["paired"]
    return "\n\n".join([models, _table(PAIRED_HEADERS, paired_rows(paired)),
                        _table(PER_SEED_HEADERS, per_seed_rows(paired))])


def results_doc_blocks(claim2: Sequence[Mapping[str, Any]],
                       claim3: Mapping[str, Any]) -> dict[str, str]:
    """docs/results.md's blocks: the MNIST protocols, each claim-2 dataset's table and claim 3's
    tables."""
    generated = {"mnist-protocols": mnist_protocols(claim2), "claim3": claim3_tables(claim3)}
    for experiment, dataset, cells, report in datasets(claim2):
        if experiment != "mnist":
            generated[block_name(experiment, dataset, report)] = localisation_table(cells)
    return generated


def regenerate(text: str, generated: Mapping[str, str]) -> str:
    """``text`` with every marked block replaced; a marker without data, or data without a
    marker, is an error."""
    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in generated:
            raise KeyError(f"block {name!r} has no generator")
        return match.group(1) + generated[name].rstrip("\n") + "\n" + match.group(3)

    fresh = BLOCK.sub(replace, text)
    missing = set(generated) - {m.group("name") for m in BLOCK.finditer(text)}
    if missing:
        raise KeyError(f"no block for {sorted(missing)}")
    return fresh


def targets() -> dict[Path, dict[str, str]]:
    """Each generated file and its blocks, from the committed reports."""
    claim2 = [load(path) for path in CLAIM2]
    claim3 = load(CLAIM3)
    return {README: blocks(load(MAIN), claim2, claim3),
            RESULTS_DOC: results_doc_blocks(claim2, claim3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 when a file is out of date")
    args = parser.parse_args()
    stale = []
    for path, generated in targets().items():
        current = path.read_text()
        fresh = regenerate(current, generated)
        if fresh != current:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(fresh)
    if args.check and stale:
        print(f"out of date: {', '.join(map(str, stale))}; run python scripts/result_tables.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
