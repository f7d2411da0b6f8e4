"""Building blocks shared by the papers' convolutional VAEs."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def conv_encoder(in_channels: int, channels: Sequence[int], flat: int, hidden: int
                 ) -> nn.Sequential:
    """Conv(k4, s2, p1) + ReLU per entry of ``channels``, then Flatten, Linear(flat, hidden), ReLU.

    The trunk of the MNIST and UCSD encoders of Liu et al. As one ``nn.Sequential`` its
    convolutions are named ``encoder.0``, ``encoder.2``, ... and the last one is followed by
    ReLU -> Flatten -> Linear, the structure the attention engine's fast path needs.
    """
    layers: list[nn.Module] = []
    for c_in, c_out in zip([in_channels, *channels[:-1]], channels, strict=True):
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.ReLU()]
    layers += [nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU()]
    return nn.Sequential(*layers)
