"""Find a layer by its dotted name and capture its output during a forward pass.

The captured activation ``A`` is the tensor the attention maps are built from. Hooks live only
inside a ``with`` block, so nothing stays attached to the user's model.
"""

from __future__ import annotations

from types import TracebackType

from torch import Tensor, nn

from vaecam.errors import ConfigError


def spatial_layer_names(model: nn.Module) -> list[str]:
    """Names of the convolution layers of ``model``: the usual targets for attention."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.modules.conv._ConvNd)]


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """Return the sub-module called ``name`` (for example ``encoder.2``) or explain the choices."""
    modules = dict(model.named_modules())
    if not name or name not in modules:
        choices = ", ".join(spatial_layer_names(model)) or "none found"
        raise ConfigError(
            f"unknown layer '{name}'; pick a layer by its dotted name (--layer), "
            f"for example one of the convolutions: {choices}"
        )
    return modules[name]


class LayerCapture:
    """Record the output of ``layer`` during one forward pass.

    With ``detach=True`` the output is replaced by a fresh leaf that requires grad, so gradients
    stop at the layer (cheap, no graph into earlier parameters). With ``detach=False`` the
    activation stays connected to the encoder weights (differentiable maps). Either way the
    module downstream receives a copy, so an in-place operation after the layer cannot alter the
    captured activation.
    """

    def __init__(self, layer: nn.Module, name: str, detach: bool):
        self.layer = layer
        self.name = name
        self.detach = detach
        self.outputs: list[Tensor] = []
        self._handle: object | None = None

    def _hook(self, module: nn.Module, inputs: tuple, output: object) -> Tensor:
        if not isinstance(output, Tensor) or output.dim() != 4:
            shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            raise ConfigError(
                f"layer '{self.name}' gives {shape}, not a (B, C, h, w) feature map; "
                "choose a convolutional layer (--layer)"
            )
        activation = output.detach().requires_grad_(True) if self.detach else output
        self.outputs.append(activation)
        return activation.clone()

    @property
    def activation(self) -> Tensor:
        """The single captured activation; an error if the layer ran zero or several times."""
        if len(self.outputs) != 1:
            raise ConfigError(
                f"layer '{self.name}' ran {len(self.outputs)} times in one encode(); "
                "attention needs a layer that runs exactly once: choose another layer"
            )
        return self.outputs[0]

    def __enter__(self) -> LayerCapture:
        self._handle = self.layer.register_forward_hook(self._hook)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.remove()  # type: ignore[attr-defined]
            self._handle = None
