"""The official dSprites file (Matthey et al. 2017): download, packed reader and the loader.

:class:`DSpritesNPZ` reads the official ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``. Its
``imgs`` are 737,280 binary 64x64 images, 2.9 GB as uint8; numpy cannot memory-map a member of a
(compressed) ``.npz``, so the member is decompressed in chunks and kept bit-packed along the last
axis: 737280 x 64 x 8 bytes = 368 MB resident, never 2.9 GB.

:func:`load_dsprites` returns it, or the download-free renderer
:class:`~vaecam.data.dsprites_procedural.DSpritesProcedural`. ``vaecam data download dsprites
--dest DIR`` fetches the official file (:func:`download_dsprites`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from vaecam.data.download import fetch, verify_checksum
from vaecam.data.dsprites_factors import DSPRITES_FACTOR_NAMES, DSPRITES_FACTOR_SIZES
from vaecam.data.dsprites_procedural import DSpritesProcedural
from vaecam.data.ground_truth import GroundTruthData
from vaecam.errors import DataError

DSPRITES_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_URL = f"https://github.com/deepmind/dsprites-dataset/raw/master/{DSPRITES_FILENAME}"
# DeepMind publishes no checksum. This MD5 of the official file is the one pinned, identically, by
# several independent loaders (torchvision-style dataset classes); we could not compute a SHA-256
# offline, so the download is checked against it. Pass ``sha256=`` to also pin a SHA-256.
DSPRITES_MD5 = "7da33b31b13a06f4b04a70402ce90c2e"

_DOWNLOAD_HINT = f"vaecam data download dsprites --dest DIR (fetches {DSPRITES_FILENAME})"
_NOT_OFFICIAL = (f"the file is corrupt or not the official dSprites file; delete it and re-run: "
                 f"{_DOWNLOAD_HINT}")


def download_dsprites(dest: Path, sha256: str | None = None) -> Path:
    """Download the official dSprites ``.npz`` into folder ``dest`` and return its path.

    The file is checked against :data:`DSPRITES_MD5` (the published digest of the official file;
    no official SHA-256 is published) and, when given, against ``sha256``; a downloaded file that
    fails is deleted. An already present file is checked, not downloaded again, and never deleted.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / DSPRITES_FILENAME
    downloaded = not target.exists()
    if downloaded:
        partial = target.with_suffix(".part")
        fetch(DSPRITES_URL, partial, f"download it by hand into {dest}")
        partial.replace(target)
    try:
        verify_checksum(target, DSPRITES_MD5, "md5", _NOT_OFFICIAL)
        if sha256 is not None:
            verify_checksum(target, sha256, "sha256", _NOT_OFFICIAL)
    except DataError:
        if downloaded:
            target.unlink()
        raise
    return target


def _read_packed_images(path: Path, num_images: int, chunk: int = 8192) -> np.ndarray:
    """Decompress the ``imgs`` member of an ``.npz`` chunk by chunk into bit-packed (n, 64, 8)."""
    expected = (num_images, 64, 64)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path} is not a readable .npz ({exc}); re-download: {_DOWNLOAD_HINT}"
        ) from exc
    with archive:
        if "imgs.npy" not in archive.namelist():
            raise DataError(
                f"{path} has no 'imgs' array; expected the official file: {_DOWNLOAD_HINT}"
            )
        with archive.open("imgs.npy") as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise DataError(
                    f"{path}: unsupported .npy version {version} for 'imgs'; re-save it"
                )
            if shape != expected or dtype != np.uint8 or fortran:
                raise DataError(
                    f"{path}: 'imgs' has wrong shape {shape} {dtype}; expected {expected} uint8 "
                    f"(the official file): {_DOWNLOAD_HINT}"
                )
            packed = np.empty((num_images, 64, 8), dtype=np.uint8)
            for start in range(0, num_images, chunk):
                stop = min(start + chunk, num_images)
                raw = member.read((stop - start) * 64 * 64)
                if len(raw) != (stop - start) * 64 * 64:
                    raise DataError(f"{path}: 'imgs' is truncated; re-download: {_DOWNLOAD_HINT}")
                block = np.frombuffer(raw, dtype=np.uint8).reshape(stop - start, 64, 64)
                if block.max(initial=0) > 1:
                    raise DataError(f"{path}: 'imgs' is not binary 0/1; expected the official file")
                packed[start:stop] = np.packbits(block, axis=-1)
    return packed


class DSpritesNPZ(GroundTruthData):
    """The official dSprites file, held bit-packed in memory (368 MB).

    Loading checks the shape of ``imgs`` and that ``latents_classes`` follows the flat index order
    of :meth:`GroundTruthData.index_to_factors`; any mismatch raises :class:`DataError`.
    """

    factor_names = DSPRITES_FACTOR_NAMES
    factor_sizes = DSPRITES_FACTOR_SIZES

    def __init__(self, path: Path):
        path = Path(path)
        if not path.is_file():
            raise DataError(f"dSprites file {path} not found; get it with: {_DOWNLOAD_HINT}")
        self._packed = _read_packed_images(path, len(self))
        with np.load(path, allow_pickle=False) as archive:
            if "latents_classes" not in archive.files:
                raise DataError(
                    f"{path} has no 'latents_classes' array; expected the official file"
                )
            classes = archive["latents_classes"]
        if classes.shape != (len(self), self.num_factors) or not np.array_equal(
            classes, self.index_to_factors(np.arange(len(self)))
        ):
            raise DataError(
                f"{path}: 'latents_classes' {classes.shape} does not enumerate factor sizes "
                f"{self.factor_sizes} in C order; expected the official file: {_DOWNLOAD_HINT}"
            )

    def observations_from_factors(self, factors: np.ndarray) -> np.ndarray:
        index = self.factors_to_index(self._check_factors(factors))
        images = np.unpackbits(self._packed[index], axis=-1)
        return images[:, None].astype(np.float32)


def load_dsprites(source: str | Path = "procedural") -> GroundTruthData:
    """``"procedural"`` for :class:`DSpritesProcedural`, else a path to the official ``.npz``."""
    if str(source) == "procedural":
        return DSpritesProcedural()
    return DSpritesNPZ(Path(source))
