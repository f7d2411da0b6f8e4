"""UCSD Anomaly Detection (Ped1, Ped2) loaders: training frames and labelled test clips.

Official layout of one dataset folder (``UCSDped1`` or ``UCSDped2``)::

    Train/TrainNNN/NNN.tif        normal clips
    Test/TestNNN/NNN.tif          test clips
    Test/TestNNN_gt/NNN.bmp       pixel masks, one per frame, for only some test clips

Copies in the wild differ in extension (.tif, .jpg, .png, .bmp) and mask names (``NNN.bmp``,
``frameNNN.png``), so frames and masks are matched by the frame NUMBER in the file name. Files
that are not images (``UCSDped1.m``, ``.DS_Store``, ``Thumbs.db``) and folders not named like
clips are ignored. Frames are resized to ``size`` x ``size`` grayscale (the paper uses 100) and
masks to the same size with nearest-neighbour sampling; a frame is anomalous iff its
full-resolution mask has a non-zero pixel.
"""

from __future__ import annotations

import logging
import re
import tarfile
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from vaecam.data.download import fetch
from vaecam.data.images import image_size, is_image_file, read_image, read_mask
from vaecam.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

UCSD_PAGE = "http://www.svcl.ucsd.edu/projects/anomaly/dataset.htm"
UCSD_URL = "http://www.svcl.ucsd.edu/projects/anomaly/UCSD_Anomaly_Dataset.tar.gz"
_LAYOUT = (
    "expected layout: UCSDped1/Train/TrainNNN/*.tif, Test/TestNNN/*.tif, Test/TestNNN_gt/*.bmp"
    f" — download from {UCSD_PAGE} and unpack"
)
_TRAIN_CLIP = re.compile(r"Train\d+")
_TEST_CLIP = re.compile(r"Test\d+")
_GT_FOLDER = re.compile(r"Test\d+_gt")


@dataclass(frozen=True)
class UCSDFrame:
    """One frame: its clip, number, image file, mask file (None if unlabelled), frame label."""

    clip: str
    number: int
    image: Path
    mask: Path | None = None
    anomalous: bool = False


def frame_number(path: Path) -> int:
    """The frame number in a file name: the last run of digits (``017.tif``, ``frame017.png``)."""
    digits = re.findall(r"\d+", Path(path).stem)
    if not digits:
        raise DataError(
            f"no frame number in the file name {path}; name frames and masks NNN.<ext> "
            "or frameNNN.<ext>"
        )
    return int(digits[-1])


def _numbered_images(folder: Path) -> dict[int, Path]:
    """The image files of a clip or mask folder by frame number; DataError if none or twice."""
    found: dict[int, Path] = {}
    for path in sorted(p for p in folder.iterdir() if is_image_file(p)):
        number = frame_number(path)
        if number in found:
            raise DataError(
                f"{found[number]} and {path} both have frame number {number}; keep one of them"
            )
        found[number] = path
    if not found:
        raise DataError(
            f"clip folder {folder} has no image files (.tif, .jpg, .png, .bmp); "
            "remove the folder or restore its frames"
        )
    return dict(sorted(found.items()))


def _subfolders(folder: Path, pattern: re.Pattern[str]) -> dict[str, Path]:
    """Subfolders whose whole name matches ``pattern``, sorted by name."""
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and pattern.fullmatch(p.name)}


def _dataset_dir(root: Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"UCSD folder {root} not found; {_LAYOUT}")
    if not (root / "Train").is_dir() and not (root / "Test").is_dir():
        inner = sorted(p.name for p in root.glob("UCSDped*") if p.is_dir())
        if inner:
            raise DataError(
                f"{root} holds {', '.join(inner)}; pass one of those folders as the UCSD root"
            )
        raise DataError(f"UCSD folder {root} has no Train or Test folder; {_LAYOUT}")
    return root


def _check_size(size: int) -> None:
    if size < 1:
        raise ConfigError(f"frame size must be a positive number of pixels, not {size}")


class UCSDTrainFrames(Dataset[Tensor]):
    """All frames of all ``Train/TrainNNN`` clips as float tensors (1, size, size) in [0, 1]."""

    def __init__(self, root: Path, size: int = 100) -> None:
        _check_size(size)
        train_dir = _dataset_dir(root) / "Train"
        clips = _subfolders(train_dir, _TRAIN_CLIP)
        if not clips:
            raise DataError(f"no training clips (TrainNNN folders) in {train_dir}; {_LAYOUT}")
        self.frames = [
            UCSDFrame(name, number, path)
            for name, folder in clips.items()
            for number, path in _numbered_images(folder).items()
        ]
        self.size = size

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Tensor:
        return torch.from_numpy(read_image(self.frames[index].image, "L", self.size))[None]

    def stacked(self) -> Tensor:
        """Every frame in one (N, 1, size, size) tensor."""
        return torch.stack([self[i] for i in range(len(self))])


class UCSDTestClips(Dataset[tuple[Tensor, Tensor, str, int]]):
    """Test frames with pixel masks: (image (1, S, S), mask (S, S) bool, clip name, frame number).

    ``clips`` selects test clips by name (``"Test003"``) or number (``3``); default all. With
    ``require_masks`` (default) clips without a ``TestNNN_gt`` folder are skipped with a logged
    warning (listed in ``skipped_clips``) unless ``clips`` names them, which is an error. With
    ``require_masks=False`` they are loaded with all-False masks (their frames count as normal)
    and listed in ``unlabeled_clips``: fine for looking at maps, wrong for scoring. In a clip
    with masks every frame needs one (as in the official release). ``frames="anomalous-only"``
    keeps the frames whose mask has an anomalous pixel, as the paper's localisation evaluation
    does.
    """

    def __init__(
        self,
        root: Path,
        size: int = 100,
        clips: Sequence[str | int] | None = None,
        require_masks: bool = True,
        frames: Literal["all", "anomalous-only"] = "all",
    ) -> None:
        _check_size(size)
        if frames not in ("all", "anomalous-only"):
            raise ConfigError(f"frames must be 'all' or 'anomalous-only', not {frames!r}")
        test_dir = _dataset_dir(root) / "Test"
        available = _subfolders(test_dir, _TEST_CLIP)
        if not available:
            raise DataError(f"no test clips (TestNNN folders) in {test_dir}; {_LAYOUT}")
        gt_dirs = {
            name.removesuffix("_gt"): folder
            for name, folder in _subfolders(test_dir, _GT_FOLDER).items()
        }
        selected = _select_clips(available, clips, test_dir)
        self.skipped_clips: list[str] = []
        self.unlabeled_clips: list[str] = []
        self.frames: list[UCSDFrame] = []
        for name in selected:
            if name in gt_dirs:
                self.frames += _labelled_frames(name, available[name], gt_dirs[name])
            elif clips is not None and require_masks:
                raise DataError(
                    f"test clip {name} has no pixel masks ({test_dir / (name + '_gt')} missing); "
                    "choose clips with a _gt folder or pass require_masks=False"
                )
            elif require_masks:
                self.skipped_clips.append(name)
            else:
                self.unlabeled_clips.append(name)
                self.frames += [
                    UCSDFrame(name, number, path)
                    for number, path in _numbered_images(available[name]).items()
                ]
        if self.skipped_clips:  # named in every result of a localisation run, too
            logger.warning(
                "UCSD: skipping test clips without pixel masks (no TestNNN_gt folder): %s",
                ", ".join(self.skipped_clips),
            )
        if frames == "anomalous-only":
            self.frames = [f for f in self.frames if f.anomalous]
        if not self.frames:
            wanted = "anomalous frames" if frames == "anomalous-only" else "frames with masks"
            raise DataError(
                f"no {wanted} in the selected test clips of {test_dir}; "
                "add TestNNN_gt mask folders or choose other clips"
            )
        self.size = size
        width, height = image_size(self.frames[0].image)
        self.display_aspect = width / height  # frames are squashed to size x size for the model

    @property
    def labels(self) -> Tensor:
        """Frame-level labels (bool, one per item): True iff the frame's mask is non-empty."""
        return torch.tensor([f.anomalous for f in self.frames])

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, str, int]:
        frame = self.frames[index]
        image = torch.from_numpy(read_image(frame.image, "L", self.size))[None]
        if frame.mask is None:
            mask = torch.zeros(self.size, self.size, dtype=torch.bool)
        else:
            mask = torch.from_numpy(read_mask(frame.mask, self.size))
        return image, mask, frame.clip, frame.number


def _select_clips(
    available: dict[str, Path], clips: Sequence[str | int] | None, test_dir: Path
) -> list[str]:
    """Resolve clip names or numbers to folder names, in the order given."""
    if clips is None:
        return list(available)
    by_number = {int(name[len("Test") :]): name for name in available}
    selected = []
    for clip in clips:
        name = by_number.get(clip) if isinstance(clip, int) else clip
        if name not in available:
            raise DataError(
                f"test clip {clip!r} not found in {test_dir}; clips there: {', '.join(available)}"
            )
        selected.append(name)
    return selected


def _labelled_frames(name: str, clip_dir: Path, gt_dir: Path) -> list[UCSDFrame]:
    """A clip's frames paired with their masks by frame number; reads every mask once."""
    images = _numbered_images(clip_dir)
    masks = _numbered_images(gt_dir)
    width, height = image_size(next(iter(images.values())))
    frames = []
    for number, path in images.items():
        mask_path = masks.pop(number, None)
        if mask_path is None:
            raise DataError(
                f"test clip {name}: frame {number} ({path.name}) has no mask in {gt_dir}; "
                "every frame of a clip with a _gt folder needs NNN.bmp/NNN.png/frameNNN.png"
            )
        mask = read_mask(mask_path)
        if mask.shape != (height, width):
            raise DataError(
                f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but the frames of {name} "
                f"are {width}x{height}; masks must have the frame size"
            )
        frames.append(UCSDFrame(name, number, path, mask_path, bool(mask.any())))
    if masks:
        logger.warning(
            "UCSD: ignoring %d mask(s) in %s without a frame of the same number",
            len(masks),
            gt_dir,
        )
    return frames


def download_ucsd(dest: Path, sha256: str | None = None, url: str = UCSD_URL) -> Path:
    """Download and unpack the UCSD Anomaly Detection archive into ``dest`` (explicit use only).

    ``sha256`` checks the archive; without it the computed hash is logged as a warning so that
    it can be passed next time. Returns the folder that holds ``UCSDped1`` and ``UCSDped2``.
    The archive (~700 MB) is kept in ``dest``.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / Path(urllib.parse.urlparse(url).path).name
    part = archive.with_name(archive.name + ".part")
    computed = fetch(url, part, f"download it from {UCSD_PAGE} and unpack it into {dest}")
    if sha256 is None:
        logger.warning(
            "UCSD archive %s not verified; its SHA-256 is %s (pass it to check later downloads)",
            archive.name,
            computed,
        )
    elif computed != sha256.strip().lower():
        part.unlink()
        raise DataError(
            f"{url} has SHA-256 {computed}, not the expected {sha256}; "
            "the download is damaged or the file changed: retry or check the expected hash"
        )
    part.replace(archive)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DataError(
            f"cannot unpack {archive} ({' '.join(str(exc).split())}); delete it and download again"
        ) from exc
    found = sorted(dest.glob("UCSDped[12]")) + sorted(dest.glob("*/UCSDped[12]"))
    if not found:
        raise DataError(f"{archive} holds no UCSDped1 or UCSDped2 folder; {_LAYOUT}")
    return found[0].parent
