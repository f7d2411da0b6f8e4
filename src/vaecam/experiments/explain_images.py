"""Attention maps for a folder of the user's own images (``vaecam explain --images DIR``).

Every image file directly in the folder is read in the model's colour mode, resized to its input
size (bilinear), explained in batches, and written as ``<stem>.png`` (the image with the map as
a heat map on top) and ``<stem>.npy`` (the raw map, float32, at the model's input size or, with
``upsample=False``, at the layer's resolution). ``explain.json`` lists the files and settings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from vaecam.attention import AttentionExplainer
from vaecam.attention.engine import split_options
from vaecam.data.images import is_image_file, read_image
from vaecam.errors import DataError
from vaecam.report.tables import write_json
from vaecam.training.checkpoints import load_model
from vaecam.viz.figures import subplots
from vaecam.viz.overlays import show_overlay


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted; one-line errors for a bad folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--images {folder} is not a folder; give the folder holding the images")
    files = sorted(p for p in folder.iterdir() if is_image_file(p))
    if not files:
        raise DataError(f"no image files (png, jpg, tif, bmp) in {folder}; put the images "
                        "directly in that folder")
    repeated = sorted(stem for stem, n in Counter(p.stem for p in files).items() if n > 1)
    if repeated:
        raise DataError(f"several images in {folder} share a name ({', '.join(repeated)}): "
                        "their maps would overwrite each other; rename them")
    return files


def _load(path: Path, shape: Sequence[int]) -> torch.Tensor:
    """One image as a (C, H, W) tensor in [0, 1], in the model's channels and size."""
    channels, height, width = shape
    if channels not in (1, 3):
        raise DataError(f"the model takes {channels}-channel images; only gray (1) and RGB (3) "
                        "models can read image files")
    array = read_image(path, "L" if channels == 1 else "RGB")
    tensor = torch.from_numpy(array)
    tensor = tensor[None] if channels == 1 else tensor.permute(2, 0, 1)
    if tuple(tensor.shape[1:]) != (height, width):
        tensor = torch.nn.functional.interpolate(tensor[None], size=(height, width),
                                                 mode="bilinear", align_corners=False,
                                                 antialias=True)[0].clamp(0, 1)
    return tensor


def _overlay(path: Path, image: torch.Tensor, attention: torch.Tensor, title: str) -> None:
    fig, ax = subplots(figsize=(3, 3))
    show_overlay(ax, image, attention)
    ax.set_title(title, fontsize=8)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def explain_folder(checkpoint: Path, images: Path, out: Path, method: str = "1",
                   activation: str = "relu", layer: str | None = None, batch_size: int = 32,
                   progress: bool = True, **attention: Any) -> dict[str, Any]:
    """Explain every image in ``images`` with the model of ``checkpoint``; see module doc."""
    files = image_files(images)
    model, _ = load_model(checkpoint)
    layer = layer or model.default_layer
    settings, arguments = split_options(attention)
    explainer = AttentionExplainer(model, layer, activation=activation, **settings)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {"checkpoint": str(checkpoint), "images": str(images),
                               "layer": layer, "method": method, "activation": activation,
                               "files": []}
    bar = tqdm(total=len(files), desc="explain", unit="image", disable=not progress)
    for start in range(0, len(files), batch_size):
        batch = files[start : start + batch_size]
        x = torch.stack([_load(p, model.input_shape) for p in batch])
        maps = explainer.explain(x, method, **arguments)
        for path, image, attention_map in zip(batch, x, maps, strict=True):
            npy, png = out / f"{path.stem}.npy", out / f"{path.stem}.png"
            np.save(npy, attention_map.numpy().astype(np.float32))
            _overlay(png, image, attention_map, f"{path.name}: method {method}, {layer}")
            written["files"] += [str(png), str(npy)]
        bar.update(len(batch))
    bar.close()
    write_json(out / "explain.json", written)
    return written
