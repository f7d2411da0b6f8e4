"""The report of ``vaecam reproduce``: ``report.md``, ``report.html`` and ``results.json``.

Built from the stage outcomes and the files the stages wrote (each localize folder's
``results.json``, the dSprites summary), beside the published numbers of
:mod:`vaecam.report.references`:

* a summary with one verdict per claim of Liu et al. (CVPR 2020), each with the numbers behind
  it, and the maps that win on every dataset (beyond the paper): better than the ``recon-abs``
  baseline and than the better trivial reference (``mean-diff`` or ``random``);
* per experiment: tables with the paper's, the reproduction's and vaecam's numbers (vaecam:
  ``mean ± std [95% interval]`` over seeds, verdicts against the ``recon-abs`` baseline and the
  better trivial reference), the latent and encoder health of every model (a warning when a
  latent collapsed or an encoder layer is dead), and the figures;
* what every stage did, and how to rerun: the command, versions, device, each stage's resolved
  configuration and wall time.

``results.json`` holds the same in machine-readable form: per stage its record, per experiment
the cells of every setting, the verdicts and the environment.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vaecam import __version__
from vaecam.experiments.dsprites import (
    AD,
    BASE,
    PAIRED_HEADERS,
    PER_SEED_HEADERS,
    p_value_cell,
    paired_rows,
    per_seed_rows,
    verdict_cell,
)
from vaecam.experiments.localization.config import BASELINE
from vaecam.experiments.mnist import FIGURE1, FIGURE2
from vaecam.experiments.mnist_anomalies import DESCRIPTIONS
from vaecam.maps.setting import Setting
from vaecam.outputs.portable import PortablePaths
from vaecam.report.document import (
    Document,
    Figure,
    Note,
    Paragraph,
    Section,
    Verdict,
    format_duration,
    interval,
    mean_std,
    rerun_section,
)
from vaecam.report.localization import (
    HIDDEN_ALIVE,
    METRIC_NAMES,
    best_per_family,
    bootstrap_note,
    cell_text,
    collapse_warning,
    collapsed_mark,
    dead_layer_seeds,
    hidden_alive_text,
    is_win,
    method_table_note,
    metric_cell,
    metric_keys,
    trivial_verdict_text,
    verdict_cells,
    verdict_headers,
    verdict_text,
)
from vaecam.report.portable import portable_document
from vaecam.report.references import DSPRITES_FACTORVAE_SCORE, MVTEC_PIXEL, UCSD_PED1_PIXEL_AUROC
from vaecam.report.render import ReportFiles, write_report
from vaecam.report.table import Cell, Column, Table
from vaecam.report.tables import fmt
from vaecam.reproduce.plan import (
    Plan,
    figures_dir,
    localize_dir,
    mnist_label,
    summary_dir,
)
from vaecam.reproduce.stages import StageRunner
from vaecam.training.run_folder import plain

TITLE = "Reproduction of Liu et al. (CVPR 2020), Towards Visually Explaining VAEs"
_VERDICT_STYLE = {"better": "good", "worse": "bad", "undecided": "mixed"}
_UCSD_REPRO = ("repro 1 relu", "repro 1 abs", "repro 2 relu", "repro 2 abs")


# --- environment -----------------------------------------------------------------------------


def git_commit() -> str | None:
    """The commit of the installed vaecam source when it is a git checkout (``src/vaecam`` of
    a repository), marked when the tracked files differ from it; None otherwise."""
    import vaecam

    package = Path(vaecam.__file__).resolve().parent
    root = package.parent.parent
    if package.parent.name != "src" or not (root / ".git").exists():
        return None

    def git(*args: str) -> str:
        return subprocess.run(["git", "--no-optional-locks", "-C", str(root), *args],
                              capture_output=True, text=True, timeout=20, check=True
                              ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit} (with uncommitted changes)" if dirty else commit


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"cpu ({os.cpu_count()} cores)"


def environment(plan: Plan) -> dict[str, Any]:
    import torch

    return {"vaecam": __version__, "git_commit": git_commit(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "device": device_name(),
            "accelerator": plan.request.accelerator or "each preset's (auto: a GPU if visible)"}


# --- reading the stages' results ---------------------------------------------------------------


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Results:
    """The results of a finished run, found through the plan's layout and the outcomes."""

    def __init__(self, plan: Plan, runner: StageRunner):
        self.plan = plan
        self.runner = runner

    def status(self, name: str) -> str:
        outcome = self.runner.outcomes.get(name)
        return outcome.status if outcome else "not run"

    def problem(self, name: str) -> str:
        """Why the results of stage ``name`` are missing ("" when they are there)."""
        outcome = self.runner.outcomes.get(name)
        if outcome is None:
            return f"stage {name} did not run"
        if outcome.status in ("failed", "blocked"):
            return f"stage {name} {outcome.status}: {outcome.error}"
        return ""

    def localization(self, experiment: str, dataset: str) -> dict[str, Any] | None:
        folder = localize_dir(self.plan.out, experiment, dataset)
        name = folder.relative_to(self.plan.out).as_posix()
        if self.status(name) not in ("done", "skipped"):
            return None
        return _read(folder / "results.json")

    def dsprites(self) -> dict[str, Any] | None:
        if self.status("dsprites/summary") not in ("done", "skipped"):
            return None
        return _read(summary_dir(self.plan.out) / "results.json")


# --- cells and tables --------------------------------------------------------------------------


def _setting(results: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    return next((s for s in results["settings"] if s["name"] == name), None)


def _short(setting: Mapping[str, Any]) -> str:
    """``conv3 m2 relu``: the grid point of an attention setting of results.json."""
    return Setting.from_record(setting).coordinates


def _style(cell: Mapping[str, Any] | None) -> str:
    """``good`` when both verdicts (baseline, better trivial reference) are better, ``bad`` when
    one is worse, ``mixed`` otherwise; none for a reference itself."""
    verdicts = [v for v in (verdict_text(cell), verdict_text(cell, "vs_trivial")) if v != "–"]
    if not verdicts:
        return ""
    if all(v == "better" for v in verdicts):
        return _VERDICT_STYLE["better"]
    return _VERDICT_STYLE["worse" if "worse" in verdicts else "undecided"]


def _styled(cell: Mapping[str, Any] | None) -> Cell:
    """A metric cell coloured by its two verdicts (:func:`_style`)."""
    return metric_cell(cell, _style(cell))


def _best_attention(results: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next((s for s in best_per_family(results) if s["family"] == "attention"), None)


def constant_map(cell: Mapping[str, Any] | None) -> bool:
    """A metric cell of a map that is constant on every test image: AUROC exactly 0.5 on every
    seed and on every bootstrap resample. Such a row is no result and is never called best."""
    if not cell:
        return False
    if "mean" not in cell:  # degenerate on every seed: no value at all
        return True
    values = [cell["mean"], *(v for v in cell.get("per_seed", []) if v is not None),
              *cell["ci95"]]
    return all(float(v) == 0.5 for v in values)


def highest(settings: Sequence[Mapping[str, Any]], metric: str = "pixel_auroc"
            ) -> Mapping[str, Any] | None:
    """The setting with the highest mean ``metric``, leaving out constant maps (None if none)."""
    scored = [s for s in settings if s["metrics"].get(metric)
              and not constant_map(s["metrics"][metric])]
    return max(scored, key=lambda s: float(s["metrics"][metric]["mean"]), default=None)


def _mean(setting: Mapping[str, Any] | None, metric: str = "pixel_auroc") -> float | None:
    cell = (setting or {}).get("metrics", {}).get(metric)
    return None if cell is None or "mean" not in cell else float(cell["mean"])


def method_table(results: Mapping[str, Any], caption: str) -> Table:
    """Each map family's best setting: every metric with its interval, the two verdicts."""
    keys = metric_keys(results)
    rows = []
    for s in best_per_family(results):
        m = s["metrics"]
        rows.append([s["name"] + collapsed_mark(s, results), *(_styled(m.get(k)) for k in keys),
                     *verdict_cells(m), round(float(s["ms_per_image"]), 1)])
    return Table(["map", *(METRIC_NAMES[k] for k in keys), *verdict_headers(),
                  Column("ms / image", digits=1)], rows, caption=caption)


def grid_table(results: Mapping[str, Any], caption: str) -> Table:
    keys = metric_keys(results)
    rows = [[s["name"] + collapsed_mark(s, results), *(_styled(s["metrics"].get(k)) for k in keys),
             *verdict_cells(s["metrics"])] for s in results["settings"]]
    return Table(["setting", *(METRIC_NAMES[k] for k in keys), *verdict_headers()], rows,
                 caption=caption)


def latent_table(results: Mapping[str, Any]) -> Table:
    dead = dead_layer_seeds(results)
    rows = [[seed, fmt(float(h["kl"]), 3), f"{h['active_units']} of {h['latent_dim']}",
             Cell(hidden_alive_text(h), "bad") if seed in dead else hidden_alive_text(h),
             fmt(float(h["mu_std"]), 3), Cell("yes", "bad") if h["collapsed"] else "no"]
            for seed, h in results["latent"].items()]
    return Table(["seed", "KL (nats)", "active units", HIDDEN_ALIVE,
                  "std of mu (mean over dims)", "collapsed"], rows,
                 caption="Latent and encoder health of the explained models")


def _localization_blocks(results: Mapping[str, Any], folder: Path, title: str) -> list[Any]:
    """Latent health (with a warning), the method table, every setting, the figures."""
    blocks: list[Any] = []
    warning = collapse_warning(results).removeprefix("WARNING: ")
    if warning:
        blocks.append(Note(warning, level="warning"))
    blocks += [
        Paragraph(f"{results.get('note', '')} Seeds {', '.join(map(str, results['seeds']))}; "
                  f"{bootstrap_note(results)}"),
        latent_table(results),
        method_table(results, f"{title}: one setting per map. {method_table_note(results)}"),
        grid_table(results, f"{title}: every setting"),
    ]
    blocks += _figures(folder, title, results)
    return blocks


def selection_words(results: Mapping[str, Any]) -> str:
    """How the one setting per map of the method table was picked, in a few words."""
    if results.get("tuning"):
        return "the setting of each map chosen on training data"
    return "the setting of each map with the highest pixel AUROC on these test images"


def _figures(folder: Path, title: str, results: Mapping[str, Any]) -> list[Figure]:
    shown = [("overlays_methods.png", f"{title}: test images (ground-truth mask as a contour) "
              f"with {selection_words(results)} (first seed)"),
             ("roc.png", f"{title}: pixel ROC curves of {selection_words(results)} (first seed)")]
    return [Figure(folder / name, caption) for name, caption in shown
            if (folder / name).is_file()]


def _missing(results: Results, name: str) -> Note:
    return Note(f"No results: {results.problem(name) or 'the stage wrote no results.json'}.",
                level="warning")


# --- verdicts on the claims ------------------------------------------------------------------


def _overall(flags: Sequence[bool | None]) -> str:
    """The verdict over datasets: ``None`` marks one that is no evidence (collapsed latent)."""
    evidence = [f for f in flags if f is not None]
    if not evidence:
        return "inconclusive"
    if all(evidence):
        return "reproduced"
    return "partly reproduced" if any(evidence) else "not reproduced"


def _collapsed(results: Mapping[str, Any]) -> str:
    seeds = results.get("collapsed_seeds", [])
    if not seeds:
        return ""
    return f"; latent collapsed (seed {', '.join(map(str, seeds))}): not evidence"


def claim1(mnist: Mapping[str, Mapping[str, Any] | None]) -> Verdict:
    """Method-1 maps (the paper's setting: ReLU, first listed layer) find the MNIST anomalies
    (every protocol run): pixel AUROC against chance (0.5) and against the reconstruction
    baseline."""
    claim = "Claim 1: attention maps explain what a VAE encodes (MNIST anomalies)"
    parts, flags = [], []
    for dataset, results in mnist.items():
        if results is None:
            continue
        layer = next(iter(results["switches"]["layers"]), "")
        setting = _setting(results, Setting("attention", layer, "1", "relu").label())
        base = _setting(results, BASELINE)
        if setting is None or base is None:
            continue
        cell = setting["metrics"]["pixel_auroc"]
        collapsed = _collapsed(results) or ("; degenerate map: not evidence"
                                            if "ci95" not in cell else "")
        flags.append(None if collapsed else float(cell["ci95"][0]) > 0.5)
        parts.append(f"trained on {mnist_label(dataset)}: method 1 {layer} relu "
                     f"pixel AUROC {cell_text(cell)} vs chance 0.5 and {BASELINE} "
                     f"{fmt(_mean(base))} ({verdict_text(cell)}; "
                     f"{trivial_verdict_text(cell)}{collapsed})")
    if not parts:
        return Verdict(claim, "not evaluated", "no MNIST localisation with method 1 and ReLU")
    return Verdict(claim, _overall(flags), "; ".join(parts))


def _published(experiment: str, dataset: str, generated: bool) -> str:
    """Paper and reproduction pixel AUROC of a dataset (their best setting), as text."""
    if experiment == "ucsd":
        rows = [v for k, v in UCSD_PED1_PIXEL_AUROC.items() if k != "baseline"]
        paper = max(r["paper"] for r in rows)
        repro = max(r[c] for r in rows for c in _UCSD_REPRO)
        text = f"paper {paper:.2f}, reproduction {repro:.2f} (Ped1"
        comparable = "ped1" in dataset.lower() and not generated
        return text + ("" if comparable else "; not comparable") + ")"
    reference = MVTEC_PIXEL.get(dataset)
    if reference is None or generated:
        return "no published numbers" if reference is None else "generated data: not comparable"
    return f"paper {reference[0]:.2f}, reproduction {max(reference[1], reference[2]):.2f}"


def claim2(localization: Sequence[tuple[str, str, Mapping[str, Any] | None]],
           generated: bool) -> Verdict:
    """Per UCSD dataset and MVTec-AD category: the best attention setting against recon-abs."""
    claim = ("Claim 2: attention maps localise anomalies better than the reconstruction error "
             "(pixel AUROC; the paper: state of the art)")
    parts, flags = [], []
    for experiment, dataset, results in localization:
        best = None if results is None else _best_attention(results)
        if results is None or best is None:
            continue
        cell = best["metrics"]["pixel_auroc"]
        collapsed = _collapsed(results)
        flags.append(None if collapsed else is_win(best, ("pixel_auroc",)))
        parts.append(f"{dataset}: {_short(best)} {fmt(_mean(best))} vs {BASELINE} "
                     f"{fmt(_mean(_setting(results, BASELINE)))} ({verdict_text(cell)}; "
                     f"{trivial_verdict_text(cell)}; "
                     f"{_published(experiment, dataset, generated)}{collapsed})")
    if not parts:
        return Verdict(claim, "not evaluated", "no UCSD or MVTec-AD localisation finished")
    return Verdict(claim, _overall(flags), "; ".join(parts))


def claim3(dsprites: Mapping[str, Any] | None) -> Verdict:
    """AD-FactorVAE against FactorVAE across seeds, per gamma: the paired seed bootstrap's
    interval (the verdict) and the Wilcoxon p-value."""
    claim = "Claim 3: the attention disentanglement loss improves disentanglement (dSprites)"
    paired = (dsprites or {}).get("paired", [])
    if not paired:
        return Verdict(claim, "not evaluated", "no AD-FactorVAE and FactorVAE pair finished")
    parts = []
    for p in paired:
        test = p["test"]
        parts.append(
            f"gamma {p['gamma']:g}, {test['n']} seed(s): AD-FactorVAE "
            f"{mean_std(p[AD]['mean'], p[AD]['std'])} vs FactorVAE "
            f"{mean_std(p[BASE]['mean'], p[BASE]['std'])}, difference "
            f"{test['mean_diff']:+.3f} {interval(*(test['ci95'] or (None, None)))} (95%, paired "
            f"seed bootstrap), Wilcoxon p {p_value_cell(test)}: {verdict_cell(test)}")
    published = "; ".join(f"{k}: {v}" for k, v in DSPRITES_FACTORVAE_SCORE.items())
    verdicts = [p["verdict"] for p in paired]
    if "better" in verdicts:
        word = _overall([v == "better" for v in verdicts])
    else:
        word = "not reproduced" if "worse" in verdicts else "inconclusive"
    return Verdict(claim, word, f"{'; '.join(parts)}; published: {published}")


def beyond_the_paper(localization: Sequence[tuple[str, str, Mapping[str, Any] | None]]
                     ) -> tuple[Table, list[dict[str, Any]]]:
    """Per dataset, the maps that win on both pixel AUROC and AUPRO (better than the baseline
    and than the better trivial reference, two-level intervals over seeds and test units), and
    for reference the map with the highest pixel AUROC."""
    rows, data = [], []
    for experiment, dataset, results in localization:
        if results is None:
            continue
        rows_of = best_per_family(results)
        winners = [s for s in rows_of if is_win(s)]
        best = highest(rows_of)
        if best is None:
            continue
        m = best["metrics"]
        shown = "; ".join(f"{s['label']}{collapsed_mark(s, results)} "
                          f"({s['metrics']['pixel_auroc']['mean']:.3f} / "
                          f"{s['metrics']['aupro']['mean']:.3f})" for s in winners) or "none"
        best_label = best["label"] + collapsed_mark(best, results)
        rows.append([f"{experiment} {dataset}", shown, best_label,
                     _styled(m.get("pixel_auroc")), _styled(m.get("aupro")), *verdict_cells(m)])
        data.append({"experiment": experiment, "dataset": dataset,
                     "wins": [s["label"] for s in winners],
                     "best_pixel_auroc_map": best["label"],
                     "pixel_auroc": m.get("pixel_auroc"), "aupro": m.get("aupro")})
    tuned = all(r.get("tuning") for _, _, r in localization if r is not None)
    chosen = ("options chosen on training data" if tuned else "options chosen on training "
              "data where a run was tuned, else each map's setting with the highest pixel "
              "AUROC on the test images")
    table = Table(["dataset", f"wins (better than {BASELINE} and the trivial references on "
                   "pixel AUROC and AUPRO; means)", "highest pixel AUROC", "pixel AUROC",
                   "AUPRO (FPR<=0.3)", *verdict_headers()], rows,
                  caption=f"Maps beyond the paper: {chosen}; verdicts against {BASELINE} and "
                  "against the better trivial reference on the same two-level bootstrap "
                  "resamples (seeds, then test units)")
    return table, data


# --- sections ----------------------------------------------------------------------------------


def _mnist_section(results: Results, found: Mapping[str, Any]) -> Section:
    out = results.plan.out
    blocks: list[Any] = [Paragraph(
        "One-class VAEs (the authors' architecture) trained on digits 1 and 3. Neither paper "
        "reports a localisation number on MNIST, so vaecam adds one: held-out digits of the "
        "trained class with an anomaly whose pixels are known, and the clean held-out digits; "
        "there is no published column. Protocols: "
        + "; ".join(f"{name}: {text}" for name, text in DESCRIPTIONS.items())
        + " (a title without a protocol is 'pasted').")]
    figures = figures_dir(out)
    if (figures / FIGURE1).is_file():
        blocks.append(Figure(figures / FIGURE1, "Reproduction's Figure 1: model trained on 1, "
                             "shown 7s; rows relu / abs / sigmoid; left method 1, right "
                             "method 2 (first seed)"))
    if (figures / FIGURE2).is_file():
        blocks.append(Figure(figures / FIGURE2, "Reproduction's Figure 2: method 1 with ReLU; "
                             "trained on 1 shown 9, 2, 4; trained on 3 shown 8, 5"))
    if not (figures / FIGURE1).is_file():
        blocks.append(_missing(results, "mnist/figures"))
    subsections = []
    for dataset, data in found.items():
        folder = localize_dir(out, "mnist", dataset)
        title = f"Trained on {mnist_label(dataset)}"
        body = (_localization_blocks(data, folder, f"MNIST, {title.lower()}") if data
                else [_missing(results, f"mnist/localize_{dataset}")])
        subsections.append(Section(title, body))
    return Section("MNIST (claim 1)", blocks, subsections)


def figure4_table(results: Mapping[str, Any], dataset: str, generated: bool) -> Table:
    """The reproduction's Figure 4: pixel AUROC per layer, paper | reproduction | vaecam."""
    switches = results["switches"]
    ours = [(m, a) for m in switches["methods"] for a in switches["activations"]]
    base = _setting(results, BASELINE)
    collapsed = bool(results.get("collapsed_seeds"))
    rows = [[BASELINE, *(UCSD_PED1_PIXEL_AUROC["baseline"][c] for c in ("paper", *_UCSD_REPRO)),
             *([metric_cell((base or {}).get("metrics", {}).get("pixel_auroc"))] * len(ours))]]
    for label in switches["layers"]:
        reference = UCSD_PED1_PIXEL_AUROC.get(label, {})
        settings = [_setting(results, Setting("attention", label, m, a).label()) or {}
                    for m, a in ours]
        cells = [s.get("metrics", {}).get("pixel_auroc") for s in settings]
        present = next((s for s in settings if s), None)
        mark = collapsed_mark(present, results) if present else ""
        rows.append([label + mark, *(reference.get(c) for c in ("paper", *_UCSD_REPRO)),
                     *(metric_cell(c, "muted") if collapsed else _styled(c) for c in cells)])
    caption = ""
    if collapsed:
        caption = (f"The latent collapsed (seed {', '.join(map(str, results['collapsed_seeds']))})"
                   ": vaecam's attention cells are greyed, their verdicts are no evidence about "
                   "attention. ")
    caption += "Pixel AUROC per encoder layer (reproduction's Figure 4); paper and reproduction: "
    if generated:
        caption += "UCSD Ped1, not comparable with this generated data"
    elif "ped1" in dataset.lower():
        caption += "UCSD Ped1"
    else:
        caption += f"UCSD Ped1, not directly comparable with {dataset}"
    return Table(["layer", "paper", *(f"reproduction {c.removeprefix('repro ')}"
                                      for c in _UCSD_REPRO),
                  *(Column(f"vaecam m{m} {a}", digits=3) for m, a in ours)], rows,
                 caption=caption, digits=2)


def _ucsd_section(results: Results, found: Mapping[str, Any]) -> Section:
    subsections = []
    for dataset, data in found.items():
        folder = localize_dir(results.plan.out, "ucsd", dataset)
        if data is None:
            subsections.append(Section(dataset, [_missing(results, f"ucsd/{dataset}/localize")]))
            continue
        subsections.append(Section(dataset, [
            figure4_table(data, dataset, results.plan.generated),
            *_localization_blocks(data, folder, f"UCSD {dataset}")]))
    return Section("UCSD pedestrians (claim 2)", [Paragraph(
        "The three-conv VAE of Liu et al. trained on the normal training clips; attention maps "
        "of every encoder layer x method x activation and the reconstruction-error baseline "
        "scored on the labelled test frames.")], subsections)


def table2(found: Mapping[str, Mapping[str, Any] | None], generated: bool) -> Table:
    """The reproduction's Table 2 for every category present: pixel AUROC and best IoU."""
    rows = []
    last = ""
    for category, results in found.items():
        if results is None:
            continue
        last = list(results["switches"]["layers"])[-1]
        reference = None if generated else MVTEC_PIXEL.get(category)
        best = _best_attention(results)
        for i, metric in enumerate(("pixel_auroc", "best_iou")):
            refs = list(reference[3 * i: 3 * i + 3]) if reference else [None] * 3
            names = [BASELINE, *(Setting("attention", last, "2", a).label()
                                 for a in ("relu", "abs"))]
            cells = [(_setting(results, n) or {}).get("metrics", {}).get(metric) for n in names]
            best_cell = (best or {}).get("metrics", {}).get(metric)
            rows.append([category, METRIC_NAMES[metric], *refs, metric_cell(cells[0]),
                         *(_styled(c) for c in cells[1:]),
                         Cell(f"{cell_text(best_cell)} ({_short(best)})" if best
                              else "–", _style(best_cell))])
    ours = [f"vaecam {BASELINE}", f"vaecam {last} m2 relu", f"vaecam {last} m2 abs",
            "vaecam attention (method table)"]
    # the attention column is called best only through how its setting was picked
    picked = " or ".join(sorted({selection_words(r) for r in found.values() if r is not None}))
    return Table(["category", "metric", "paper", "reproduction relu", "reproduction abs",
                  *(Column(header, digits=3) for header in ours)], rows, digits=2,
                 caption="Pixel AUROC and best IoU (reproduction's Table 2; its columns used "
                 "method 2 at the last layer)" + ("; generated data, published numbers not "
                                                   "comparable" if generated else "")
                 + f"; vaecam attention: the attention row of the method table, {picked}")


def _mvtec_section(results: Results, found: Mapping[str, Any]) -> Section:
    blocks: list[Any] = [Paragraph(
        "The ResNet18-VAE of Liu et al. trained on the defect-free training images of each "
        "category present (rotated and flipped on the fly); maps scored on the test images.")]
    if any(found.values()):
        blocks.append(table2(found, results.plan.generated))
    subsections = []
    for category, data in found.items():
        folder = localize_dir(results.plan.out, "mvtec", category)
        body = (_localization_blocks(data, folder, f"MVTec-AD {category}") if data
                else [_missing(results, f"mvtec/{category}/localize")])
        subsections.append(Section(category, body))
    return Section("MVTec-AD (claim 2)", blocks, subsections)


def _published_dsprites(model: str) -> tuple[str | None, str | None]:
    """(paper, reproduction) FactorVAE metric of a model from the references."""
    refs = DSPRITES_FACTORVAE_SCORE
    if model == "ad-factorvae":
        return None, next((v for k, v in refs.items() if "AD-FactorVAE" in k), None)
    return (next((v for k, v in refs.items() if "Kim & Mnih" in k), None),
            next((v for k, v in refs.items() if "reproduction FactorVAE" in k), None))


def _dsprites_section(results: Results, data: Mapping[str, Any] | None) -> Section:
    blocks: list[Any] = [Paragraph(
        "FactorVAE (Kim & Mnih 2018) and AD-FactorVAE (FactorVAE + the attention "
        "disentanglement loss of Liu et al.) trained per gamma and seed; FactorVAE "
        "disentanglement metric, MIG and reconstruction error on a fixed seeded sample.")]
    if data is None:
        return Section("dSprites (claim 3)", [*blocks, _missing(results, "dsprites/summary")])
    runs = Table(["model", "gamma", "seed", "steps", "FactorVAE metric", "MIG",
                  "reconstruction error"],
                 [[r["model"], f"{r['gamma']:g}", r["train_seed"], r["steps"], r["factorvae"],
                   r["mig"],
                   r["recon_error"]] for r in data["runs"]], caption="Every run")
    summary = Table(["model", "gamma", "runs", "paper", "reproduction", "vaecam FactorVAE metric",
                     "vaecam MIG", "vaecam reconstruction error"],
                    [[s["model"], f"{s['gamma']:g}", s["runs"], *_published_dsprites(s["model"]),
                      mean_std(s["factorvae_mean"], s["factorvae_std"]), s["mig_mean"],
                      s["recon_mean"]] for s in data["summary"]],
                    caption="FactorVAE metric: published (paper: Kim & Mnih's FactorVAE; "
                    "reproduction: the public AD-FactorVAE reproduction) and vaecam (mean ± "
                    "sample std over seeds)")
    blocks += [runs, summary]
    if data["paired"]:
        rows = [[*row[:-1], Cell(row[-1], _VERDICT_STYLE.get(p["verdict"], ""))]
                for row, p in zip(paired_rows(data["paired"]), data["paired"], strict=True)]
        blocks += [Paragraph(data["paired_method"]),
                   Table(PAIRED_HEADERS, rows,
                         caption="AD-FactorVAE against FactorVAE across seeds (claim 3)"),
                   Table(PER_SEED_HEADERS, per_seed_rows(data["paired"]),
                         caption="Per seed, with the FactorVAE metric's own sampling noise")]
    figure = summary_dir(results.plan.out) / "figure5b.png"
    if figure.is_file():
        blocks.append(Figure(figure, "Reproduction's Figure 5b: FactorVAE metric against "
                             "reconstruction error, one point per run (labels: gamma)"))
    return Section("dSprites (claim 3)", blocks)


def _stages_section(results: Results) -> Section:
    rows = []
    for stage in results.plan.stages:
        outcome = results.runner.outcomes.get(stage.name)
        status = outcome.status if outcome else "not run"
        note = outcome.error if outcome and outcome.error else ""
        resumed = (outcome.result.get("resumed_from_step") if outcome else None) or 0
        if status == "done" and resumed:
            note = f"resumed from step {resumed}"
        style = {"failed": "bad", "blocked": "bad", "skipped": "muted"}.get(status, "")
        rows.append([stage.name, stage.kind, Cell(status, style),
                     format_duration(results.runner.seconds(stage.name)), note])
    blocks: list[Any] = [Table(["stage", "kind", "status", "wall time", "note"], rows,
                               caption="Every stage of this run (skipped: finished earlier "
                               "with the same configuration; its wall time is the recorded "
                               "one)")]
    if results.plan.skipped:
        blocks.append(Table(["not run", "why"], [reason.split(": ", 1) if ": " in reason
                                                 else [reason, ""]
                                                 for reason in results.plan.skipped],
                            caption="Data found but not used, and experiments without data"))
    return Section("Stages", blocks)


# --- the whole report --------------------------------------------------------------------------


def build(plan: Plan, runner: StageRunner, command: str
          ) -> tuple[Document, dict[str, Any]]:
    """The report and results.json data of a finished (or partly failed) run."""
    results = Results(plan, runner)
    env = environment(plan)
    found = {exp: {d: (results.localization(exp, d) if exp != "dsprites" else None)
                   for d in plan.datasets.get(exp, [])} for exp in plan.options}
    dsprites = results.dsprites() if "dsprites" in plan.options else None
    localization = [(exp, d, r) for exp in ("ucsd", "mvtec") for d, r in found.get(exp,
                                                                                   {}).items()]
    verdicts = [v for v in (
        claim1(found["mnist"]) if "mnist" in plan.options else None,
        claim2(localization, plan.generated) if {"ucsd", "mvtec"} & set(plan.options) else None,
        claim3(dsprites) if "dsprites" in plan.options else None) if v is not None]
    beyond, beyond_data = beyond_the_paper(
        [("mnist", d, r) for d, r in found.get("mnist", {}).items()] + localization)
    failed = [o.name for o in runner.outcomes.values() if o.status in ("failed", "blocked")]
    intro: list[Any] = [Paragraph(
        "Every experiment of Liu et al., Towards Visually Explaining Variational Autoencoders "
        "(CVPR 2020), and of its reproduction study, run by 'vaecam reproduce' with the "
        f"'{plan.request.preset}' preset. Published numbers are kept beside vaecam's; every "
        "cell of vaecam is the mean over training seeds with its 95% bootstrap interval.")]
    if plan.generated:
        intro.append(Note("UCSD and MVTec-AD ran on small generated datasets (smoke preset "
                          "without --data): their numbers test the pipeline and are not "
                          "comparable with the published ones."))
    if failed:
        intro.append(Note(f"{len(failed)} stage(s) failed or were blocked ({', '.join(failed)});"
                          " see Stages and reproduce.log.", level="warning"))
    summary = Section("Summary", [*verdicts], [Section("Beyond the paper", [beyond])])
    sections = [summary]
    if "mnist" in plan.options:
        sections.append(_mnist_section(results, found["mnist"]))
    if found.get("ucsd"):
        sections.append(_ucsd_section(results, found["ucsd"]))
    if found.get("mvtec"):
        sections.append(_mvtec_section(results, found["mvtec"]))
    if "dsprites" in plan.options:
        sections.append(_dsprites_section(results, dsprites))
    sections.append(_stages_section(results))
    paths = PortablePaths(plan.out, plan.discovery.root)
    rerun = rerun_section(
        command, version=__version__, commit=env["git_commit"], torch_version=env["torch"],
        device=env["device"],
        stage_configs={s.name: {"command": s.command or "(part of vaecam reproduce)",
                                "config": plain(s.config)} for s in plan.stages},
        wall_times={s.name: runner.seconds(s.name) for s in plan.stages})
    rerun.blocks.insert(1, Paragraph(paths.legend()))
    sections.append(rerun)
    written = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    doc = portable_document(Document(TITLE, intro, sections, metadata={
        "vaecam version": __version__, "git commit": env["git_commit"] or "unknown",
        "preset": plan.request.preset, "data": data_summary(plan), "written": written}), paths)
    data = {
        "title": TITLE, "command": command, "preset": plan.request.preset, "out": str(plan.out),
        "written": written, "environment": env,
        "data": {"root": plan.discovery.root, "generated": plan.generated,
                 "ucsd": plan.discovery.ucsd, "mvtec": plan.discovery.mvtec_root,
                 "mnist_root": plan.discovery.mnist_root, "dsprites": plan.discovery.dsprites,
                 "not_run": plan.skipped},
        "stages": {s.name: {"kind": s.kind, "status": results.status(s.name),
                            "seconds": round(runner.seconds(s.name), 2),
                            "error": getattr(runner.outcomes.get(s.name), "error", ""),
                            "command": s.command, "config": s.config,
                            "result": getattr(runner.outcomes.get(s.name), "result", {})}
                   for s in plan.stages},
        "experiments": {exp: {d: _cells(r, localize_dir(plan.out, exp, d))
                              for d, r in per.items()} for exp, per in found.items()
                        if exp != "dsprites"},
        "verdicts": [{"claim": v.claim, "verdict": v.verdict, "evidence": v.evidence}
                     for v in verdicts],
        "beyond_the_paper": beyond_data,
        "failed": failed,
    }
    if "dsprites" in plan.options:
        data["experiments"]["dsprites"] = dsprites
    return doc, paths(plain(data))


def data_summary(plan: Plan) -> str:
    """The datasets of the run, for the header: ``mnist digit1, digit3; ucsd UCSDped2``, with
    ``(generated)`` for the smoke preset's generated data. Never a path of the machine."""
    parts = []
    for exp in plan.options:
        if exp == "dsprites":
            official = plan.discovery.dsprites != "procedural"
            parts.append(f"dsprites {'official .npz' if official else 'procedural'}")
        else:
            parts.append(f"{exp} {', '.join(plan.datasets.get(exp, []))}")
    return "; ".join(parts) + (" (UCSD and MVTec-AD generated)" if plan.generated else "")


def _cells(results: Mapping[str, Any] | None, folder: Path) -> dict[str, Any] | None:
    if results is None:
        return None
    return {"results": str(folder / "results.json"), "seeds": results["seeds"],
            "n_images": results["n_images"], "switches": results["switches"],
            "latent": results["latent"], "collapsed_seeds": results["collapsed_seeds"],
            "cells": {s["name"]: s["metrics"] for s in results["settings"]}}


def write(plan: Plan, runner: StageRunner, command: str) -> ReportFiles:
    """Write report.md, report.html and results.json into the run's folder."""
    doc, data = build(plan, runner, command)
    return write_report(doc, plan.out, data)
