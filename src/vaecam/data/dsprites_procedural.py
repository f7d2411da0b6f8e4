"""A dSprites-like ground-truth dataset rendered on the fly with numpy, no download.

:class:`DSpritesProcedural` has the same factors, sizes, values and index order as the official
file (:mod:`vaecam.data.dsprites`), rendered in about 0.4 ms per batch of 64. It is not
pixel-identical to the official file:

- Outlines are our own: a square of side 15 px (circumradius 10.6 px), a 2:1 ellipse of
  semi-axes 11 and 5.5 px and the algebraic heart ``(x^2+y^2-1)^3 - x^2 y^3 <= 0`` rescaled to
  a circumradius of 11 px about its centroid, all at scale 1; scale multiplies every length
  (0.5..1). The official sprites' exact outlines, aspect ratio, heart drawing and sizes are not
  documented and were not measured here.
- Placement: the shape's centroid moves linearly from pixel 12.125 (pos 0) to 50.875 (pos 1),
  1.25 px per step, in both axes (pixel centres at integer coordinates, posX -> column, posY ->
  row with 0 at the top), so every shape at every scale and orientation keeps the two outer
  pixel rows and columns empty. The 1/8 px offset keeps the axis-aligned square's edges off
  pixel centres (see rasterisation). The official file's placement range, axis directions and
  border behaviour are not documented; we did not reproduce them.
- Orientation rotates counter-clockwise (as displayed) about the centroid; at angle 0 the
  square is axis-aligned, the ellipse's long axis horizontal, the heart upright. As in the
  official file the 40 values are ``linspace(0, 2*pi, 40)``, so values 0 and 39 are the same
  pose (here pixel-identical), and the square (period pi/2) and ellipse (period pi) only show
  their orientation modulo their symmetry: many orientation values give (near-)duplicate
  images in both datasets.
- Rasterisation: a pixel is on when its centre lies inside the shape (no anti-aliasing, binary
  like the official images). Every outline is star-shaped about its centroid and scaled about
  it, so pixel area never shrinks with scale; the placement grid above makes it grow strictly
  for every combination (checked exhaustively by the tests). The official rasteriser is
  unknown.
- Colour is a factor of size 1 (always white), kept for interface parity.
"""

from __future__ import annotations

import numpy as np

from vaecam.data.dsprites_factors import DSPRITES_FACTOR_NAMES, DSPRITES_FACTOR_SIZES, SHAPE_NAMES
from vaecam.data.ground_truth import GroundTruthData


class DSpritesProcedural(GroundTruthData):
    """dSprites-like images rendered on demand; same factors and index order as the official file.

    See the module docstring for how it differs from the official images. Rendering is
    deterministic: the same factors always give the same pixels.
    """

    factor_names = DSPRITES_FACTOR_NAMES
    factor_sizes = DSPRITES_FACTOR_SIZES

    scales = np.linspace(0.5, 1.0, 6)
    orientations = np.linspace(0.0, 2.0 * np.pi, 40)
    positions = np.linspace(0.0, 1.0, 32)
    radius = 11.0  # px at scale 1: every shape fits in a disc of this radius about its centroid
    square_half_side = 7.5  # px at scale 1 (circumradius 10.6)
    # Pixel coordinate of the centroid at position 0 and 1: a 1.25 px step, and an offset of 1/8 px
    # that keeps every edge of the axis-aligned square (side 7.5..15 px) 1/8 px off pixel centres,
    # so its area, like that of every other pose, grows strictly with scale.
    centre_range = (12.125, 50.875)

    # Pixels within ``radius`` of a centroid lie in a window of 2 * radius + 1 rows and columns.
    _window = np.arange(2 * int(radius) + 1)
    # Algebraic heart (x^2+y^2-1)^3 <= x^2 y^3: centroid at y=0.2935, circumradius about it 1.2933.
    _heart_centroid_y = 0.2935
    _heart_radius = 1.3

    def observations_from_factors(self, factors: np.ndarray) -> np.ndarray:
        return self.render(factors)[:, None].astype(np.float32)

    def render(self, factors: np.ndarray) -> np.ndarray:
        """Binary images (n, 64, 64) as bool for factor rows (n, 6).

        Only the window around each centroid is evaluated, then pasted into an empty frame.
        """
        factors = self._check_factors(factors)
        images = np.zeros((len(factors), 64, 64), dtype=bool)
        for shape_id in range(len(SHAPE_NAMES)):
            batch = np.flatnonzero(factors[:, 1] == shape_id)
            if batch.size:
                rows, columns, u, v = self._canonical_coordinates(factors[batch])
                pixel = (batch[:, None] * 64 + rows)[:, :, None] * 64 + columns[:, None, :]
                images.reshape(-1)[pixel] = self._inside(shape_id, u, v)
        return images

    def _canonical_coordinates(
        self, factors: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Window pixel rows and columns (n, w) and their centres in each shape's frame (n, w, w).

        The shape's frame is centred, unrotated and of circumradius 1: moving the sampling grid
        instead of the shape keeps one inside test per shape.
        """
        low, high = self.centre_range
        centre_x = low + self.positions[factors[:, 4]] * (high - low)
        centre_y = low + self.positions[factors[:, 5]] * (high - low)
        columns = np.ceil(centre_x - self.radius).astype(np.int64)[:, None] + self._window
        rows = np.ceil(centre_y - self.radius).astype(np.int64)[:, None] + self._window
        angle = np.mod(self.orientations[factors[:, 3]], 2.0 * np.pi)
        inv_size = 1.0 / (self.radius * self.scales[factors[:, 2]])
        cos = (np.cos(angle) * inv_size).astype(np.float32)[:, None]
        sin = (np.sin(angle) * inv_size).astype(np.float32)[:, None]
        dx = (columns - centre_x[:, None]).astype(np.float32)
        dy = (centre_y[:, None] - rows).astype(np.float32)  # y points up
        u = (cos * dx)[:, None, :] + (sin * dy)[:, :, None]
        v = (cos * dy)[:, :, None] - (sin * dx)[:, None, :]
        return rows, columns, u, v

    def _inside(self, shape_id: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Inside test in canonical coordinates; each outline is star-shaped about the origin."""
        if SHAPE_NAMES[shape_id] == "square":
            return np.maximum(np.abs(u), np.abs(v)) <= np.float32(
                self.square_half_side / self.radius
            )
        if SHAPE_NAMES[shape_id] == "ellipse":
            return u * u + 4.0 * v * v <= 1.0
        x = u * np.float32(self._heart_radius)
        y = v * np.float32(self._heart_radius) + np.float32(self._heart_centroid_y)
        x2 = x * x
        r = x2 + y * y - 1.0
        return r * r * r <= x2 * y * y * y
