"""Find the explained layers and capture their outputs during one forward pass.

A layer is given by its dotted name (``"encoder.2"``) or as the module object itself (as
pytorch-grad-cam takes ``target_layers``). The captured activations ``A`` are the tensors the
attention maps are built from. Hooks live only inside a ``with`` block, so nothing stays
attached to the user's model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType

import torch
from torch import Tensor, nn

from vaecam.errors import ConfigError

LayerRef = str | nn.Module
ForwardHook = Callable[[nn.Module, tuple, object], Tensor]


def spatial_layer_names(model: nn.Module) -> list[str]:
    """Names of the convolution layers of ``model``: the usual targets for attention."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.modules.conv._ConvNd)]


def encoder_layer_names(model: nn.Module, x: Tensor,
                        encode: Callable[[Tensor], object] | None = None) -> list[str]:
    """Names of the convolutions that run in ``encode(x)`` (default ``model.encode``), in the
    order they run: the encoder-side layers attention can explain (a VAE's decoder is left out).
    """
    encode = encode or getattr(model, "encode", None)
    if not callable(encode):
        raise ConfigError("the model has no encode(x) method; pass encode=callable")
    ran: list[str] = []
    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: ran.append(name))
        for name, module in model.named_modules()
        if isinstance(module, nn.modules.conv._ConvNd)
    ]
    try:
        with torch.no_grad():
            encode(x)
    finally:
        for handle in handles:
            handle.remove()
    return list(dict.fromkeys(ran))


def _unknown(model: nn.Module, what: str) -> ConfigError:
    choices = ", ".join(spatial_layer_names(model)) or "none found"
    return ConfigError(
        f"unknown layer {what}; pick a layer of the model by its dotted name (--layer) or pass "
        f"the module, for example one of the convolutions: {choices}"
    )


def resolve_layer(model: nn.Module, layer: LayerRef) -> tuple[str, nn.Module]:
    """``(dotted name, module)`` of ``layer``, given by name or as a sub-module of ``model``."""
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name, module
        raise _unknown(model, f"{type(layer).__name__} (a module that is not part of the model)")
    modules = dict(model.named_modules())
    if not isinstance(layer, str) or not layer or layer not in modules:
        raise _unknown(model, repr(layer) if not isinstance(layer, str) else f"'{layer}'")
    return layer, modules[layer]


def resolve_layers(model: nn.Module, layers: LayerRef | Sequence[LayerRef]) -> dict[str, nn.Module]:
    """Dotted name -> module for one layer or a list of them (in order, duplicates dropped)."""
    refs = [layers] if isinstance(layers, (str, nn.Module)) else list(layers)
    if not refs:
        raise ConfigError("no layer given; name at least one layer to explain")
    return dict(resolve_layer(model, ref) for ref in refs)


class LayerCapture:
    """Record the outputs of ``layers`` (name -> module) during one forward pass.

    With ``detach=True`` the output of the first layer that runs is replaced by a fresh leaf
    that requires grad, so no graph is kept into earlier parameters; later layers stay connected
    to it (their gradients flow through them). With ``detach=False`` every activation stays
    connected to the encoder weights (differentiable maps). Either way the module downstream
    receives a copy, so an in-place operation after a layer cannot alter the captured output.
    """

    def __init__(self, layers: dict[str, nn.Module], detach: bool):
        self.layers = layers
        self.detach = detach
        self.outputs: dict[str, list[Tensor]] = {name: [] for name in layers}
        self._handles: list[object] = []

    def _hook_for(self, name: str) -> ForwardHook:
        def hook(module: nn.Module, inputs: tuple, output: object) -> Tensor:
            if not isinstance(output, Tensor) or output.dim() != 4:
                shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
                raise ConfigError(
                    f"layer '{name}' gives {shape}, not a (B, C, h, w) feature map; "
                    "choose a convolutional layer (--layer)"
                )
            first = not any(self.outputs.values())
            activation = output.detach().requires_grad_(True) if self.detach and first else output
            self.outputs[name].append(activation)
            return activation.clone()

        return hook

    @property
    def activations(self) -> dict[str, Tensor]:
        """Each layer's single captured output; an error if a layer ran zero or several times."""
        for name, outputs in self.outputs.items():
            if len(outputs) != 1:
                raise ConfigError(
                    f"layer '{name}' ran {len(outputs)} times in one encode(); attention needs "
                    "a layer that runs exactly once: choose another layer"
                )
        return {name: outputs[0] for name, outputs in self.outputs.items()}

    def __enter__(self) -> LayerCapture:
        self._handles = [
            module.register_forward_hook(self._hook_for(name))
            for name, module in self.layers.items()
        ]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for handle in self._handles:
            handle.remove()  # type: ignore[attr-defined]
        self._handles = []
