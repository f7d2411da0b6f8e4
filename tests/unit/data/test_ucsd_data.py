"""UCSD loaders on generated data (layout, frame/mask matching, bad inputs) and on real Ped2."""

import hashlib
import logging
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from expect import data_error
from PIL import Image

from vaecam.data.images import write_image
from vaecam.data.synthetic import make_ucsd_like
from vaecam.data.transforms import downscale_masks
from vaecam.data.ucsd import UCSDTestClips, UCSDTrainFrames, download_ucsd, frame_number
from vaecam.errors import ConfigError

FRAMES = 12  # frames per clip of the synth_ucsd_root fixture
CART_FROM = FRAMES // 3 + 1  # first anomalous frame of every test clip there


@pytest.fixture
def ucsd_copy(synth_ucsd_root: Path, tmp_path: Path) -> Path:
    """A private copy of the generated dataset, for tests that break it."""
    return Path(shutil.copytree(synth_ucsd_root, tmp_path / "UCSDped1"))


def small_ucsd(tmp_path: Path, **options) -> Path:
    """A smaller generated dataset with the given naming options."""
    defaults = dict(n_train_clips=1, n_test_clips=2, frames_per_clip=6, size=(48, 32))
    return make_ucsd_like(tmp_path, **{**defaults, **options})


# --- layout and items --------------------------------------------------------------------------


def test_train_frames_cover_all_clips(synth_ucsd_root: Path) -> None:
    ds = UCSDTrainFrames(synth_ucsd_root)
    assert len(ds) == 2 * FRAMES
    assert {f.clip for f in ds.frames} == {"Train001", "Train002"}
    x = ds[0]
    assert x.shape == (1, 100, 100) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert UCSDTrainFrames(synth_ucsd_root, size=32)[3].shape == (1, 32, 32)


def test_test_clips_skip_unlabelled_and_log_it(synth_ucsd_root: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="vaecam.data.ucsd"):
        ds = UCSDTestClips(synth_ucsd_root)
    assert ds.skipped_clips == ["Test003"]
    assert "Test003" in caplog.text
    assert len(ds) == 2 * FRAMES
    image, mask, clip, number = ds[0]
    assert image.shape == (1, 100, 100) and image.dtype == torch.float32
    assert mask.shape == (100, 100) and mask.dtype == torch.bool
    assert (clip, number) == ("Test001", 1)
    assert [f.number for f in ds.frames[:FRAMES]] == list(range(1, FRAMES + 1))


def test_frame_labels_and_anomalous_only(synth_ucsd_root: Path) -> None:
    ds = UCSDTestClips(synth_ucsd_root, size=64)
    expected = [n >= CART_FROM for n in range(1, FRAMES + 1)] * 2
    assert ds.labels.tolist() == expected
    only = UCSDTestClips(synth_ucsd_root, size=64, frames="anomalous-only")
    assert len(only) == sum(expected)
    for i in range(len(only)):
        image, mask, _, number = only[i]
        assert number >= CART_FROM and mask.any()
        assert image[0][mask].mean() > 0.85  # the mask covers the bright cart


def test_clip_selection_by_name_and_number(synth_ucsd_root: Path) -> None:
    assert {f.clip for f in UCSDTestClips(synth_ucsd_root, clips=[2]).frames} == {"Test002"}
    assert {f.clip for f in UCSDTestClips(synth_ucsd_root, clips=["Test001"]).frames} == {"Test001"}


def test_unlabelled_clips_loaded_when_masks_not_required(synth_ucsd_root: Path) -> None:
    ds = UCSDTestClips(synth_ucsd_root, require_masks=False)
    assert ds.unlabeled_clips == ["Test003"] and ds.skipped_clips == []
    assert len(ds) == 3 * FRAMES
    _, mask, clip, _ = ds[len(ds) - 1]
    assert clip == "Test003" and not mask.any()


@pytest.mark.parametrize(
    ("ext", "mask_style"),
    [(".tif", "NNN.bmp"), (".jpg", "frameNNN.png"), (".png", "NNN.png"), (".bmp", "NNN.bmp")],
)
def test_extensions_and_mask_names(tmp_path: Path, ext: str, mask_style: str) -> None:
    root = small_ucsd(tmp_path, ext=ext, mask_style=mask_style, n_unlabeled=0)
    ds = UCSDTestClips(root, size=32)
    assert len(ds) == 2 * 6
    for frame in ds.frames:
        assert frame.image.suffix == ext
        assert frame_number(frame.mask) == frame.number
    assert ds.labels.tolist() == [n >= 3 for n in range(1, 7)] * 2


def test_frames_matched_to_masks_by_number_not_name_order(tmp_path: Path) -> None:
    root = small_ucsd(tmp_path, frames_per_clip=12, mask_style="frameNNN.png", n_unlabeled=0)
    clip, gt = root / "Test" / "Test001", root / "Test" / "Test001_gt"
    for path in clip.iterdir():  # 001.tif -> 1.tif: name order 1, 10, 11, 12, 2, ...
        path.rename(clip / f"{int(path.stem)}.tif")
    for path in gt.iterdir():  # frame001.png -> frame1.png
        path.rename(gt / f"frame{frame_number(path)}.png")
    ds = UCSDTestClips(root, size=32, clips=["Test001"])
    assert [f.number for f in ds.frames] == list(range(1, 13))
    for i, frame in enumerate(ds.frames):
        assert frame.mask.name == f"frame{frame.number}.png"
        # reference: the mask file read straight with Pillow, thresholded and shrunk by hand
        full = np.asarray(Image.open(frame.mask).convert("L")) >= 128
        rows = (np.arange(32) * full.shape[0] / 32 + full.shape[0] / 64).astype(int)
        cols = (np.arange(32) * full.shape[1] / 32 + full.shape[1] / 64).astype(int)
        assert torch.equal(ds[i][1], torch.from_numpy(full[rows][:, cols]))


def test_non_image_files_ignored(ucsd_copy: Path) -> None:
    junk = {".DS_Store": b"\0\1", "Thumbs.db": b"xx", "._001.tif": b"not a tif", "notes.txt": b""}
    for folder in [ucsd_copy / "Train" / "Train001", ucsd_copy / "Test" / "Test001_gt"]:
        for name, data in junk.items():
            (folder / name).write_bytes(data)
    (ucsd_copy / "Test" / "README").write_text("not a clip")
    assert len(UCSDTrainFrames(ucsd_copy)) == 2 * FRAMES
    assert len(UCSDTestClips(ucsd_copy)) == 2 * FRAMES


# --- bad inputs --------------------------------------------------------------------------------


def test_missing_root(tmp_path: Path) -> None:
    with data_error(r"not found; expected layout: UCSDped1/Train/TrainNNN"):
        UCSDTrainFrames(tmp_path / "nowhere")
    with data_error(r"svcl\.ucsd\.edu"):
        UCSDTestClips(tmp_path / "nowhere")


def test_parent_folder_given_as_root(synth_ucsd_root: Path) -> None:
    with data_error(r"holds UCSDped1; pass one of those folders"):
        UCSDTrainFrames(synth_ucsd_root.parent)


def test_no_train_clips(ucsd_copy: Path) -> None:
    shutil.rmtree(ucsd_copy / "Train")
    (ucsd_copy / "Train").mkdir()
    with data_error(r"no training clips \(TrainNNN folders\)"):
        UCSDTrainFrames(ucsd_copy)


def test_empty_clip(ucsd_copy: Path) -> None:
    clip = ucsd_copy / "Train" / "Train002"
    shutil.rmtree(clip)
    clip.mkdir()
    (clip / ".DS_Store").write_bytes(b"")
    with data_error(r"Train002 has no image files"):
        UCSDTrainFrames(ucsd_copy)


def test_corrupt_frame_names_the_file(ucsd_copy: Path) -> None:
    bad = ucsd_copy / "Train" / "Train001" / "005.tif"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated
    ds = UCSDTrainFrames(ucsd_copy)
    with data_error(r"cannot read image .*005\.tif"):
        ds[4]


def test_explicit_clip_without_masks_is_an_error(synth_ucsd_root: Path) -> None:
    with data_error(r"Test003 has no pixel masks .*Test003_gt missing"):
        UCSDTestClips(synth_ucsd_root, clips=["Test003"])
    with data_error(r"test clip 'Test009' not found .*clips there: Test001, Test002, Test003"):
        UCSDTestClips(synth_ucsd_root, clips=["Test009"])


def test_missing_mask_names_clip_and_frame(ucsd_copy: Path) -> None:
    (ucsd_copy / "Test" / "Test002_gt" / "007.bmp").unlink()
    with data_error(r"test clip Test002: frame 7 \(007\.tif\) has no mask"):
        UCSDTestClips(ucsd_copy)


def test_mask_of_another_size(ucsd_copy: Path) -> None:
    write_image(ucsd_copy / "Test" / "Test001_gt" / "003.bmp", np.zeros((40, 60), bool))
    with data_error(r"003\.bmp is 60x40 but the frames of Test001 are 120x80"):
        UCSDTestClips(ucsd_copy)


def test_duplicate_and_unnumbered_frames(ucsd_copy: Path) -> None:
    clip = ucsd_copy / "Train" / "Train001"
    shutil.copy(clip / "001.tif", clip / "001.png")
    with data_error(r"both have frame number 1"):
        UCSDTrainFrames(ucsd_copy)
    (clip / "001.png").rename(clip / "cover.png")
    with data_error(r"no frame number in the file name .*cover\.png"):
        UCSDTrainFrames(ucsd_copy)


def test_bad_options(synth_ucsd_root: Path) -> None:
    with pytest.raises(ConfigError, match="frames must be"):
        UCSDTestClips(synth_ucsd_root, frames="some")


# --- mask downscaling --------------------------------------------------------------------------


def test_downscale_masks_majority_and_any() -> None:
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0:2, 0:1] = True  # half of the top-left 2x2 cell
    mask[3, 3] = True  # a quarter of the bottom-right cell
    majority = downscale_masks(mask, 2, 2)
    assert majority.tolist() == [[True, False], [False, False]]
    assert downscale_masks(mask, 2, 2, rule="any").tolist() == [[True, False], [False, True]]
    batch = downscale_masks(torch.stack([mask, ~mask]), 2, 2)
    assert batch.shape == (2, 2, 2) and batch.dtype == torch.bool
    assert downscale_masks(torch.ones(3, 100, 100, dtype=torch.bool), 7, 9).all()
    with pytest.raises(ConfigError):
        downscale_masks(mask, 2, 2, rule="mean")


# --- download (from a local archive: tests never touch the network) ----------------------------


@pytest.fixture
def local_archive(synth_ucsd_root: Path, tmp_path: Path) -> tuple[str, str]:
    archive = tmp_path / "UCSD_Anomaly_Dataset.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(synth_ucsd_root, arcname="UCSD_Anomaly_Dataset.v1p2/UCSDped1")
    return archive.as_uri(), hashlib.sha256(archive.read_bytes()).hexdigest()


def test_download_verifies_and_unpacks(local_archive, tmp_path: Path, caplog) -> None:
    url, sha = local_archive
    found = download_ucsd(tmp_path / "dest", sha256=sha, url=url)
    assert found == tmp_path / "dest" / "UCSD_Anomaly_Dataset.v1p2"
    assert len(UCSDTrainFrames(found / "UCSDped1")) == 2 * FRAMES
    with caplog.at_level(logging.INFO, logger="vaecam.data.ucsd"):
        download_ucsd(tmp_path / "dest2", url=url)
    assert sha in caplog.text


def test_download_errors(local_archive, tmp_path: Path) -> None:
    url, _ = local_archive
    with data_error(r"has SHA-256 [0-9a-f]{64}, not the expected 00ff"):
        download_ucsd(tmp_path / "dest", sha256="00ff", url=url)
    assert not any((tmp_path / "dest").iterdir())
    with data_error(r"could not download .*unpack it into"):
        download_ucsd(tmp_path / "dest", url=(tmp_path / "missing.tar.gz").as_uri())


# --- real data ---------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_ped2_frames_and_masks_align(shared_data: Path) -> None:
    root = shared_data / "ucsd" / "UCSDped2"
    ds = UCSDTestClips(root, clips=[1, 6])  # masks named NNN.png in Test001, frameNNN.png in 6
    by_clip = {c: [f for f in ds.frames if f.clip == c] for c in ("Test001", "Test006")}
    # anomalous frame ranges from UCSDped2.m: Test001 61-180, Test006 1-159
    assert [f.anomalous for f in by_clip["Test001"]] == [n >= 61 for n in range(1, 181)]
    assert [f.anomalous for f in by_clip["Test006"]] == [n <= 159 for n in range(1, 181)]
    image, mask, clip, number = ds[100]
    assert image.shape == (1, 100, 100) and mask.shape == (100, 100)
    assert (clip, number) == ("Test001", 101) and mask.any()
    train = UCSDTrainFrames(root, size=64)
    assert len(train) == 2550 and train[0].shape == (1, 64, 64)
