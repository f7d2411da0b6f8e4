"""dSprites ground-truth data: factor arithmetic, the procedural renderer and the .npz loader."""

import hashlib

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vaecam.data import dsprites as ds
from vaecam.data.dsprites_procedural import DSpritesProcedural
from vaecam.errors import DataError
from vaecam.viz.traversal import traversal_figure

SIZES = (1, 3, 6, 40, 32, 32)
NUM = 737_280


@pytest.fixture(scope="module")
def procedural() -> DSpritesProcedural:
    return DSpritesProcedural()


def assert_one_line_data_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_factor_space_and_index_arithmetic(procedural):
    assert procedural.factor_names == ("color", "shape", "scale", "orientation", "posX", "posY")
    assert procedural.factor_sizes == SIZES
    assert procedural.num_factors == 6
    assert procedural.observation_shape == (1, 64, 64)
    assert len(procedural) == NUM

    index = np.arange(NUM)
    factors = procedural.index_to_factors(index)
    assert factors.shape == (NUM, 6) and factors.dtype == np.int64
    assert np.array_equal(procedural.factors_to_index(factors), index)
    assert ((factors >= 0) & (factors < np.array(SIZES))).all()
    for column, size in enumerate(SIZES):  # every value of every factor equally often
        assert np.array_equal(np.bincount(factors[:, column]), np.full(size, NUM // size))

    # posY is fastest, then posX (C order, like the official arrays)
    assert procedural.index_to_factors(1).tolist() == [0, 0, 0, 0, 0, 1]
    assert procedural.index_to_factors(32).tolist() == [0, 0, 0, 0, 1, 0]
    assert procedural.index_to_factors(NUM - 1).tolist() == [s - 1 for s in SIZES]
    assert int(procedural.factors_to_index(np.array([0, 2, 5, 39, 31, 31]))) == NUM - 1

    rng = np.random.default_rng(0)
    sampled = procedural.sample_factors(1000, rng)
    assert sampled.shape == (1000, 6) and sampled.dtype == np.int64
    assert np.array_equal(
        procedural.index_to_factors(procedural.factors_to_index(sampled)), sampled
    )
    with pytest.raises(ValueError):
        procedural.index_to_factors(NUM)


def test_renders_every_combination_inside_the_frame_with_area_growing_with_scale(procedural):
    areas = np.empty(NUM, dtype=np.int64)
    chunk = 8192
    for start in range(0, NUM, chunk):
        images = procedural.render(procedural.index_to_factors(np.arange(start, start + chunk)))
        assert images.shape == (chunk, 64, 64) and images.dtype == bool
        on_border = images[:, [0, -1], :].any(axis=(1, 2)) | images[:, :, [0, -1]].any(axis=(1, 2))
        assert not on_border.any()
        areas[start : start + chunk] = np.count_nonzero(images, axis=(1, 2))
    assert (areas > 0).all()
    # for fixed shape, orientation and position, pixel area strictly increases with scale
    assert (np.diff(areas.reshape(SIZES), axis=2) > 0).all()


def test_observations_are_binary_float_and_deterministic(procedural):
    rng = np.random.default_rng(1)
    factors, observations = procedural.sample(64, rng)
    assert observations.shape == (64, 1, 64, 64) and observations.dtype == np.float32
    assert set(np.unique(observations)) <= {0.0, 1.0}
    again = DSpritesProcedural().observations_from_factors(factors)
    assert np.array_equal(observations, again)
    # an image does not depend on the rest of its batch
    reversed_batch = procedural.observations_from_factors(factors[::-1])
    assert np.array_equal(observations, reversed_batch[::-1])
    single = procedural.observations_from_factors(factors[:1])
    assert np.array_equal(observations[:1], single)


def test_orientation_endpoints_coincide_and_shapes_differ(procedural):
    factors = np.array([[0, s, 5, o, 16, 16] for s in range(3) for o in (0, 39)])
    images = procedural.render(factors)
    for shape in range(3):
        assert np.array_equal(images[2 * shape], images[2 * shape + 1])
    assert not np.array_equal(images[0], images[2])
    assert not np.array_equal(images[2], images[4])


def test_invalid_factors_are_rejected(procedural):
    with pytest.raises(ValueError):
        procedural.observations_from_factors(np.array([[0, 3, 0, 0, 0, 0]]))
    with pytest.raises(ValueError):
        procedural.observations_from_factors(np.zeros((2, 5), dtype=int))


def test_torch_dataset_and_loader(procedural):
    dataset = procedural.torch_dataset()
    assert len(dataset) == NUM
    image = dataset[NUM - 1]
    assert isinstance(image, torch.Tensor) and image.shape == (1, 64, 64)
    assert image.dtype == torch.float32
    with_factors = procedural.torch_dataset(return_factors=True)
    image, factors = with_factors[5]
    assert factors.tolist() == procedural.index_to_factors(5).tolist()
    images, factors = next(iter(DataLoader(with_factors, batch_size=8, shuffle=False)))
    assert images.shape == (8, 1, 64, 64) and factors.shape == (8, 6)
    expected = procedural.observations_from_factors(procedural.index_to_factors(np.arange(8)))
    assert np.array_equal(images.numpy(), expected)


def test_load_dsprites_and_traversal_figure(procedural, tmp_path):
    assert isinstance(ds.load_dsprites("procedural"), DSpritesProcedural)
    with pytest.raises(DataError) as excinfo:
        ds.load_dsprites(tmp_path / "missing.npz")
    assert_one_line_data_error(excinfo, "not found", "vaecam data download dsprites")
    path = traversal_figure(procedural, tmp_path / "figs" / "traversal.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size < 200_000


# --- official .npz loader, with small fake files -------------------------------------------


def write_npz(path, **arrays):
    np.savez_compressed(path, **arrays)
    return path


def test_npz_with_wrong_image_shape_is_rejected(tmp_path):
    path = write_npz(
        tmp_path / "fake.npz",
        imgs=np.zeros((10, 64, 64), dtype=np.uint8),
        latents_values=np.zeros((10, 6)),
        latents_classes=np.zeros((10, 6), dtype=np.int64),
    )
    with pytest.raises(DataError) as excinfo:
        ds.DSpritesNPZ(path)
    assert_one_line_data_error(excinfo, "wrong shape", "(737280, 64, 64)")


def test_npz_missing_key_or_not_a_zip_is_rejected(tmp_path):
    path = write_npz(tmp_path / "nokey.npz", latents_classes=np.zeros((3, 6), dtype=np.int64))
    with pytest.raises(DataError) as excinfo:
        ds.DSpritesNPZ(path)
    assert_one_line_data_error(excinfo, "no 'imgs'")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(DataError) as excinfo:
        ds.DSpritesNPZ(junk)
    assert_one_line_data_error(excinfo, "not a readable .npz")


def test_packed_reader_round_trips_and_rejects_non_binary(tmp_path):
    images = (np.random.default_rng(0).random((5, 64, 64)) < 0.3).astype(np.uint8)
    path = write_npz(tmp_path / "small.npz", imgs=images)
    packed = ds._read_packed_images(path, 5, chunk=2)
    assert packed.shape == (5, 64, 8)
    assert np.array_equal(np.unpackbits(packed, axis=-1), images)
    path = write_npz(tmp_path / "grey.npz", imgs=images * 255)
    with pytest.raises(DataError) as excinfo:
        ds._read_packed_images(path, 5)
    assert_one_line_data_error(excinfo, "not binary")


class TinyNPZ(ds.DSpritesNPZ):
    """The official loader on a reduced factor grid, so a complete fake file stays small."""

    factor_sizes = (1, 3, 2, 2, 2, 2)


def test_npz_loader_serves_images_by_factor(tmp_path, procedural):
    classes = np.stack(np.unravel_index(np.arange(48), TinyNPZ.factor_sizes), axis=-1)
    images = procedural.render(classes).astype(np.uint8)  # any binary images will do
    path = write_npz(
        tmp_path / "tiny.npz", imgs=images, latents_values=classes * 1.0, latents_classes=classes
    )
    data = TinyNPZ(path)
    factors = np.array([[0, 2, 1, 0, 1, 1], [0, 0, 0, 1, 0, 0]])
    observations = data.observations_from_factors(factors)
    assert observations.shape == (2, 1, 64, 64) and observations.dtype == np.float32
    assert np.array_equal(observations[:, 0], images[data.factors_to_index(factors)])

    shuffled = write_npz(
        tmp_path / "shuffled.npz", imgs=images, latents_classes=classes[::-1].copy()
    )
    with pytest.raises(DataError) as excinfo:
        TinyNPZ(shuffled)
    assert_one_line_data_error(excinfo, "latents_classes")


def serve(monkeypatch, tmp_path, payload: bytes | None):
    """Point the download at a local file holding ``payload`` (a missing file when None)."""
    source = tmp_path / "served" / ds.DSPRITES_FILENAME
    source.parent.mkdir(exist_ok=True)
    if payload is not None:
        source.write_bytes(payload)
    monkeypatch.setattr(ds, "DSPRITES_URL", source.as_uri())


def test_download_checks_digest_and_removes_bad_files(tmp_path, monkeypatch):
    payload = b"fake dsprites payload"
    serve(monkeypatch, tmp_path, payload)
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as excinfo:
        ds.download_dsprites(dest)
    assert_one_line_data_error(excinfo, "md5", ds.DSPRITES_MD5, "vaecam data download dsprites")
    assert list(dest.iterdir()) == []

    monkeypatch.setattr(ds, "DSPRITES_MD5", hashlib.md5(payload).hexdigest())
    with pytest.raises(DataError) as excinfo:
        ds.download_dsprites(dest, sha256="f" * 64)
    assert_one_line_data_error(excinfo, "sha256")
    assert list(dest.iterdir()) == []

    path = ds.download_dsprites(dest, sha256=hashlib.sha256(payload).hexdigest())
    assert path == dest / ds.DSPRITES_FILENAME and path.read_bytes() == payload
    mine = tmp_path / "mine"  # a file the user put there is checked, and kept when it fails
    mine.mkdir()
    (mine / ds.DSPRITES_FILENAME).write_bytes(b"the user's own copy")
    with pytest.raises(DataError):
        ds.download_dsprites(mine)
    assert (mine / ds.DSPRITES_FILENAME).read_bytes() == b"the user's own copy"


def test_download_failure_is_a_data_error(tmp_path, monkeypatch):
    serve(monkeypatch, tmp_path, None)
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as excinfo:
        ds.download_dsprites(dest)
    assert_one_line_data_error(excinfo, "could not download", "download it by hand into")
    assert list(dest.iterdir()) == []


def test_traversal_command_writes_the_figure_or_one_error_line(tmp_path, capsys):
    from vaecam.cli import main

    path = tmp_path / "traversal.png"
    assert main(["data", "traversal", "--out", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(path) in capsys.readouterr().out
    assert main(["data", "traversal", "--out", str(path), "--dsprites",
                 str(tmp_path / "missing.npz")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("vaecam: error:") and "vaecam data download dsprites" in line
