"""Building blocks shared by the papers' convolutional VAEs."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def conv_encoder(in_channels: int, channels: Sequence[int], flat: int, hidden: int,
                 batchnorm: bool = False) -> nn.Sequential:
    """Conv(k4, s2, p1) + ReLU per entry of ``channels``, then Flatten, Linear(flat, hidden), ReLU.

    The trunk of the MNIST and UCSD encoders of Liu et al. As one ``nn.Sequential`` its
    convolutions are named ``encoder.0``, ``encoder.2``, ... and the last one is followed by
    ReLU -> Flatten -> Linear, the structure the attention engine's fast path needs.

    ``batchnorm=True`` puts a BatchNorm after every convolution and after the hidden Linear and
    uses LeakyReLU(0.2) instead of ReLU (convolutions then at ``encoder.0``, ``encoder.3``, ...):
    units that a ReLU would switch off for every image keep a gradient, so the encoder cannot
    die in its first steps on inputs that barely differ (UCSD frames).
    """
    def activation() -> nn.Module:
        return nn.LeakyReLU(0.2) if batchnorm else nn.ReLU()

    layers: list[nn.Module] = []
    for c_in, c_out in zip([in_channels, *channels[:-1]], channels, strict=True):
        layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1))
        if batchnorm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(activation())
    layers += [nn.Flatten(), nn.Linear(flat, hidden)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(hidden))
    layers.append(activation())
    return nn.Sequential(*layers)


def conv_layer_names(n_convs: int, batchnorm: bool = False) -> dict[str, str]:
    """Table names ``conv1``.. of :func:`conv_encoder`'s convolutions -> their dotted names."""
    stride = 3 if batchnorm else 2
    return {f"conv{i + 1}": f"encoder.{stride * i}" for i in range(n_convs)}
