"""Lightning callbacks of every vaecam training run.

* :class:`RunCheckpoints`: ``last.ckpt`` every N epochs and/or every N steps and at the end,
  ``best.ckpt`` when the monitored loss improves; atomic writes, so a failed write (disk full)
  keeps the previous files, and the error names the file. ``best.ckpt`` is a hard link to the
  ``last.ckpt`` of its step, so a run whose best epoch is its last one stores one copy.
* :class:`LatentHealth`: KL, active latent units and the alive fraction of every encoder layer
  on a fixed sample of training images after every epoch and at the end (``health.json``), so
  that dead layers and a collapsed posterior are visible in the logs while they happen.
* :class:`GracefulStop`: Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes
  ``last.ckpt`` and stops; the run then continues with ``--resume``.
"""

from __future__ import annotations

import json
import math
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
from torch import Tensor

from vaecam.metrics.encoder_health import model_health
from vaecam.outputs import atomic_share, atomic_write_text


class RunCheckpoints(L.Callback):
    """Write ``last.ckpt`` (every ``every_n_epochs`` epochs, every ``every_n_steps`` steps, at
    the end) and ``best.ckpt`` (at those epoch ends, when ``monitor`` improved)."""

    def __init__(self, folder: Path, monitor: str, every_n_epochs: int = 1,
                 every_n_steps: int = 0):
        self.folder = Path(folder)
        self.monitor = monitor
        self.every_n_epochs = every_n_epochs
        self.every_n_steps = every_n_steps
        self.best_score = math.inf
        self._last_saved_step = -1

    @property
    def last(self) -> Path:
        return self.folder / "last.ckpt"

    @property
    def best(self) -> Path:
        return self.folder / "best.ckpt"

    def _save_last(self, trainer: L.Trainer) -> None:
        if trainer.global_step == self._last_saved_step and self.last.is_file():
            return
        trainer.save_checkpoint(self.last)
        self._last_saved_step = trainer.global_step

    def _keep_last_as_best(self, trainer: L.Trainer) -> None:
        """``best.ckpt`` := the ``last.ckpt`` just written, as a hard link (no second copy)."""
        if trainer.is_global_zero:
            atomic_share(self.last, self.best)
        trainer.strategy.barrier("best.ckpt")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        # The last step, and a requested stop, are saved here, where the loops' state is that of
        # a finished step; by ``on_train_end`` Lightning has already closed the epoch, and a
        # checkpoint written then would resume mid-epoch runs in the next epoch.
        due = self.every_n_steps and trainer.global_step % self.every_n_steps == 0
        final = 0 < trainer.max_steps <= trainer.global_step
        if due or final or trainer.should_stop:
            self._save_last(trainer)

    def _epoch_end(self, trainer: L.Trainer) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        value = trainer.callback_metrics.get(self.monitor)
        improved = value is not None and float(value) < self.best_score
        if improved:
            self.best_score = float(value)
        # A run stopped by max_steps closes its epoch after its last step was saved; last.ckpt
        # keeps that step's mid-epoch state (to resume exactly), so best.ckpt is then its own.
        written = trainer.global_step == self._last_saved_step and self.last.is_file()
        self._save_last(trainer)
        if improved and written:
            trainer.save_checkpoint(self.best)
        elif improved:
            self._keep_last_as_best(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_end(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.val_dataloaders:
            self._epoch_end(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_last(trainer)
        if not self.best.is_file():  # e.g. a run shorter than one checkpoint interval
            self._keep_last_as_best(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = float(state_dict.get("best_score", math.inf))


class LatentHealth(L.Callback):
    """Log latent and encoder health after every epoch and at the end of training.

    Computed in eval mode on ``images`` (a fixed, seeded sample of training images) with
    :func:`vaecam.metrics.encoder_health.model_health`: ``latent/kl``, ``latent/active_units``,
    ``latent/mu_std``, per encoder layer ``encoder/alive/<layer>`` and
    ``encoder/spread/<layer>``, and ``encoder/hidden_alive`` (the least-alive layer). The last
    record is kept in :attr:`last` and written to the run folder's ``health.json``.
    """

    FILE = "health.json"

    def __init__(self, images: Tensor):
        self.images = images
        self.last: dict[str, Any] | None = None

    def _measure(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model = getattr(pl_module, "model", pl_module)
        record = model_health(model, self.images.to(pl_module.device))
        values = {f"latent/{k}": float(record[k]) for k in ("kl", "active_units", "mu_std")}
        for name, layer in record["encoder_layers"].items():
            values[f"encoder/alive/{name}"] = layer["alive_fraction"]
            values[f"encoder/spread/{name}"] = layer["spread"]
        if record["hidden_alive"] is not None:
            values["encoder/hidden_alive"] = record["hidden_alive"]
        for logger in trainer.loggers:
            logger.log_metrics({**values, "epoch": trainer.current_epoch}, step=trainer.global_step)
        self.last = {"epoch": trainer.current_epoch, "step": trainer.global_step,
                     "probe_images": int(self.images.shape[0]), **record}
        if trainer.is_global_zero:
            atomic_write_text(Path(trainer.default_root_dir) / self.FILE,
                              json.dumps(self.last, indent=2) + "\n")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._measure(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.last is None or self.last["step"] != trainer.global_step:
            self._measure(trainer, pl_module)


class GracefulStop(L.Callback):
    """On the first SIGINT/SIGTERM, stop after the current step (``last.ckpt`` is written by
    :class:`RunCheckpoints` at the end); a second signal interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._trainer: L.Trainer | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._trainer is not None:
            self._trainer.should_stop = True

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is not threading.main_thread() or trainer.world_size > 1:
            return
        self._trainer = trainer
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.requested:
            trainer.should_stop = True

    def restore(self) -> None:
        """Put back the signal handlers that were active before the run."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


