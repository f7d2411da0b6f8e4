"""From resolved options (a preset merged with the user's choices) to the trainer's settings.

The command line and ``vaecam reproduce`` both train through :func:`train_config`, so the same
options always train the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaecam.errors import ConfigError

if TYPE_CHECKING:
    from vaecam.training.trainer import TrainConfig


def check_accelerator(accelerator: str) -> None:
    """Refuse an accelerator that this machine does not have, before anything starts."""
    import torch

    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--accelerator {accelerator}: no CUDA GPU is visible on this machine; "
                          "use --accelerator cpu (or auto)")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--accelerator mps: Apple's MPS backend is not available here; use cpu")


def train_config(options: dict[str, Any], experiment: str) -> TrainConfig:
    """A :class:`~vaecam.training.trainer.TrainConfig` from merged options."""
    from vaecam.training.trainer import TrainConfig

    accelerator = str(options.get("accelerator", "auto"))
    check_accelerator(accelerator)
    return TrainConfig(
        out_dir=Path(options["out"]),
        max_epochs=int(options.get("max_epochs", 1)),
        max_steps=int(options.get("max_steps", -1)),
        batch_size=int(options.get("batch_size", 128)),
        seed=int(options.get("seeds", [0])[0]),
        accelerator=accelerator,
        devices=options.get("devices", 1),
        strategy=str(options.get("strategy", "auto")),
        num_nodes=int(options.get("num_nodes", 1)),
        precision=str(options.get("precision", "32-true")),
        num_workers=int(options.get("num_workers", 0)),
        resume=bool(options.get("resume", False)),
        overwrite=bool(options.get("overwrite", False)),
        progress_bar=not options.get("no_progress", False),
        log_every_n_steps=int(options.get("log_every_n_steps", 10)),
        checkpoint_every_n_epochs=int(options.get("checkpoint_every", 1)),
        checkpoint_every_n_steps=int(options.get("checkpoint_every_steps", 0)),
        experiment=experiment,
        data_on_device=bool(options.get("data_on_device", False)),
        channels_last=bool(options.get("channels_last", False)),
        compile=bool(options.get("compile", False)),
    )
