"""Optional speed-ups of a training run: channels-last memory format and ``torch.compile``.

Both are off by default and change no result beyond float rounding; checkpoints keep their keys
and load into plain fp32 models (:func:`vaecam.training.checkpoints.load_model`).

* Channels last (NHWC) lets cuDNN use its tensor-core convolution kernels without transposes,
  mostly useful with ``--precision bf16-mixed`` / ``16-mixed`` on a GPU. Converting the model's
  4-D weights is enough: a convolution runs channels-last when its input *or* weight is, so
  batches need no conversion (:func:`batch_to_channels_last` does it when wanted).
* ``torch.compile`` compiles each child of the VAE (encoder, decoder, heads) in place with
  ``nn.Module.compile``, so parameter names do not change; the reparameterisation with its seeded
  generator stays outside the compiled graphs. It needs a working backend: Triton for CUDA, a
  C++ compiler for the CPU. :func:`compile_unavailable` finds out cheaply, without compiling.
  AD-FactorVAE's attention loss hooks a layer inside the encoder, so it is not compiled there.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from typing import Any

import lightning as L
import torch
from torch import nn

from vaecam.errors import ConfigError

__all__ = ["ChannelsLast", "CompileModel", "batch_to_channels_last", "compile_model",
           "compile_unavailable", "require_compile", "to_channels_last"]


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store the 4-D weights of ``model`` channels-last, in place (the parameters stay the same
    objects, so optimisers built before keep working); returns ``model``."""
    return model.to(memory_format=torch.channels_last)


def batch_to_channels_last(batch: Any) -> Any:
    """A batch (tensor, or list/tuple of tensors and others) with its 4-D tensors channels-last."""
    if isinstance(batch, torch.Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch
    if isinstance(batch, (list, tuple)):
        return type(batch)(batch_to_channels_last(item) for item in batch)
    return batch


def compile_unavailable(device_type: str) -> str | None:
    """Why ``torch.compile`` (inductor) cannot run on ``device_type`` here, or None if it can.

    Cheap checks only: torch's version and platform, then Triton for CUDA (and a GPU it
    supports) or a C++ compiler for the CPU.
    """
    if not hasattr(nn.Module, "compile"):
        return f"torch {torch.__version__} is older than 2.2"
    from torch import _dynamo

    if not _dynamo.is_dynamo_supported():
        return "TorchDynamo does not support this Python or platform"
    if device_type == "cuda":
        if importlib.util.find_spec("triton") is None:
            return "Triton is not installed"
        if not torch.cuda.is_available():
            return "no CUDA device is visible"
        major, minor = torch.cuda.get_device_capability()
        if major < 7:
            return f"Triton needs compute capability 7.0 or newer, this GPU has {major}.{minor}"
        return None
    if device_type == "cpu":
        compilers = [os.environ.get("CXX"), "g++", "clang++"]
        if not any(c and shutil.which(c) for c in compilers):
            return "no C++ compiler (g++ or clang++, or $CXX) is on the PATH"
        return None
    return f"vaecam does not compile for device type '{device_type}'"


def require_compile(device_type: str) -> None:
    """One-line ConfigError when ``torch.compile`` cannot run on ``device_type`` here."""
    reason = compile_unavailable(device_type)
    if reason is not None:
        raise ConfigError(f"--compile: torch.compile is unavailable here ({reason}); "
                          "train without --compile")


def compile_model(model: nn.Module, device_type: str, backend: str = "inductor",
                  **options: Any) -> nn.Module:
    """Compile every child of ``model`` that holds parameters, in place; returns ``model``.

    ``device_type`` is where training runs (checked with :func:`compile_unavailable` for the
    inductor backend; a one-line ConfigError when it cannot work). ``options`` go to
    ``torch.compile`` (e.g. ``mode="max-autotune"``).
    """
    if backend == "inductor":
        require_compile(device_type)
    for child in model.children():
        if any(True for _ in child.parameters()):
            child.compile(backend=backend, **options)
    return model


class ChannelsLast(L.Callback):
    """Converts the Lightning module to channels-last in ``setup``, before optimisers exist."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        to_channels_last(pl_module)


class CompileModel(L.Callback):
    """Compiles ``pl_module.model`` (see :func:`compile_model`) when training is set up.

    Availability is checked when the callback is made, so the error comes before any training.
    """

    def __init__(self, device_type: str, backend: str = "inductor", **options: Any) -> None:
        if backend == "inductor":
            require_compile(device_type)
        self.device_type = device_type
        self.backend = backend
        self.options = options

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        compile_model(pl_module.model, self.device_type, self.backend, **self.options)
