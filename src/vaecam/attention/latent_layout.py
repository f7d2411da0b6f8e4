"""Which latent unit is which: flat unit indices of a (possibly spatial) latent code.

The engine works on a flat code ``mu`` of shape (B, D). An encoder with a spatial latent (a
diffusers ``AutoencoderKL`` gives ``C x h x w``) is flattened in PyTorch's row-major order, so
unit ``i`` is position ``(channel, y, x)`` with ``i = (channel * h + y) * w + x``.
:class:`LatentLayout` holds the per-image shape and converts both ways, so a map can be asked for
one latent position or for a whole channel::

    layout = explainer.latent_layout(x)                   # LatentLayout(shape=(4, 8, 8))
    explainer.per_dimension(x, dims=[layout.index(0, 3, 5)])  # one position of channel 0
    explainer.method1(x, dims=layout.units(channel=2))    # mean map over channel 2's units
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vaecam.errors import ConfigError


@dataclass(frozen=True)
class LatentLayout:
    """Per-image shape of the latent code, e.g. ``(32,)`` or ``(4, 8, 8)`` (channel, y, x)."""

    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of latent units D (the flat code's length)."""
        return math.prod(self.shape)

    def _check(self, position: tuple[int, ...]) -> None:
        if len(position) != len(self.shape) or not all(
            0 <= p < n for p, n in zip(position, self.shape, strict=False)
        ):
            raise ConfigError(f"latent position {position} is outside the latent of shape "
                              f"{self.shape}; give one index per axis, each in range")

    def index(self, *position: int) -> int:
        """Flat unit index of ``position`` (one index per axis: ``index(c, y, x)``)."""
        self._check(tuple(position))
        flat = 0
        for p, n in zip(position, self.shape, strict=True):
            flat = flat * n + p
        return flat

    def position(self, unit: int) -> tuple[int, ...]:
        """The position (e.g. ``(channel, y, x)``) of flat unit ``unit``."""
        if not 0 <= unit < self.size:
            raise ConfigError(f"latent unit {unit} out of range 0..{self.size - 1}")
        position = []
        for n in reversed(self.shape):
            unit, p = divmod(unit, n)
            position.append(p)
        return tuple(reversed(position))

    def units(self, channel: int | None = None, y: int | None = None,
              x: int | None = None) -> list[int]:
        """Flat indices of the units matching the given coordinates of a (C, h, w) latent.

        ``units(channel=2)`` is channel 2 at every position; ``units(y=3, x=5)`` every channel
        at one position; nothing given selects all units.
        """
        if len(self.shape) != 3:
            raise ConfigError(f"units(channel, y, x) needs a (C, h, w) latent, not shape "
                              f"{self.shape}; use index(...) or plain unit numbers")
        wanted = (channel, y, x)
        for value, n, axis in zip(wanted, self.shape, ("channel", "y", "x"), strict=True):
            if value is not None and not 0 <= value < n:
                raise ConfigError(f"latent {axis} {value} out of range 0..{n - 1}")
        return [
            unit for unit in range(self.size)
            if all(w is None or w == p for w, p in zip(wanted, self.position(unit), strict=True))
        ]
