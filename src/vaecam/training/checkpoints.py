"""Checkpoint files: atomic writes, safe loading, and rebuilding a model from one.

Checkpoints are written by :func:`atomic_torch_save` (Lightning uses it through
``trainer.AtomicCheckpointIO``): the bytes go to a temporary file in the same folder, are flushed
to disk, and replace the old file in one ``os.replace``, so a kill or a full disk during a save
leaves the previous checkpoint intact (and the error names the file). Every vaecam checkpoint
carries a ``vaecam`` entry (model name, model configuration, format version) made of plain Python
values, so it loads with ``torch.load(weights_only=True)``: no pickled code ever runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from vaecam.errors import CheckpointError
from vaecam.models import VAE, build_model
from vaecam.outputs import atomic_write
from vaecam.outputs.portable import resolve_paths

FORMAT_VERSION = 1


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to ``path`` via a temporary file and an atomic rename."""
    atomic_write(Path(path), lambda handle: torch.save(obj, handle))


def vaecam_metadata(model: VAE, **extra: Any) -> dict[str, Any]:
    """The plain-data entry stored under ``checkpoint["vaecam"]``."""
    return {"format": FORMAT_VERSION, "model": model.name, "config": model.config, **extra}


def _load(path: Path, advice: str) -> Any:
    """``torch.load(path, weights_only=True)``; a one-line CheckpointError ending in ``advice``
    for a missing, empty, truncated or foreign file."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; train one with 'vaecam train ...'")
    try:
        if path.stat().st_size == 0:
            raise EOFError("an empty file")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, unsafe pickled objects
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else f"{type(exc).__name__}: the file ends too early"
        raise CheckpointError(f"cannot read checkpoint {path} ({reason}); {advice}") from exc


def check_resumable_checkpoint(path: Path, best: Path) -> None:
    """Refuse to resume from a damaged ``last.ckpt`` (empty, truncated), saying what to do."""
    advice = (f"copy {best} over it to resume from the best epoch, or start anew with "
              "--overwrite or another --out" if best.is_file() and best != path
              else "start anew with --overwrite or another --out")
    _load(path, advice)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a vaecam checkpoint with ``weights_only=True``; one-line errors for bad files.

    Paths in its ``vaecam`` entry written as ``$OUT/...`` are relative to the run folder that
    holds ``checkpoints/``, and are returned as absolute paths.
    """
    ckpt = _load(Path(path), "pick another file")
    if not isinstance(ckpt, dict) or "vaecam" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(
            f"{path} is not a vaecam checkpoint (no 'vaecam' entry); use a .ckpt written by "
            "'vaecam train'"
        )
    ckpt["vaecam"] = resolve_paths(ckpt["vaecam"], Path(path).absolute().parent.parent)
    return ckpt


def load_model(
    path: str | os.PathLike[str], expected: str | tuple[str, ...] | None = None
) -> tuple[VAE, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint, in eval mode; returns (model, metadata).

    ``expected`` names the model(s) the caller can work with; another architecture is an error.
    """
    ckpt = read_checkpoint(path)
    meta = ckpt["vaecam"]
    name = meta.get("model")
    allowed = (expected,) if isinstance(expected, str) else expected
    if allowed and name not in allowed:
        raise CheckpointError(
            f"checkpoint {path} holds a '{name}' model but this command needs "
            f"{' or '.join(repr(a) for a in allowed)}; pass a checkpoint trained for it"
        )
    model = build_model(name, **meta["config"])
    prefix = "model."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {path} does not fit a '{name}' model with its stored configuration; "
            "it was written by another version or edited"
        ) from exc
    return model.eval(), meta
