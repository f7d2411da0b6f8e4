"""The dSprites factor grid (Matthey et al. 2017), shared by the official file and the renderer.

Flat indices enumerate the 737,280 combinations in C order over these sizes (posY fastest), the
order of the official arrays.
"""

DSPRITES_FACTOR_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
DSPRITES_FACTOR_SIZES = (1, 3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")
