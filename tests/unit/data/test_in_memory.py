"""In-memory uint8 datasets and TensorBatchLoader against the Dataset + DataLoader path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from vaecam.data import in_memory
from vaecam.data.dsprites_procedural import DSpritesProcedural
from vaecam.data.in_memory import (
    available_memory,
    dataset_bytes,
    encode_exact,
    load_in_memory,
    training_device,
)
from vaecam.data.mnist import load_digits, one_class_split
from vaecam.data.mvtec import MVTecTrain
from vaecam.data.synthetic import make_ucsd_like
from vaecam.data.ucsd import UCSDTrainFrames
from vaecam.errors import ConfigError, DataError
from vaecam.training.checkpoints import read_checkpoint
from vaecam.training.loaders import ResumableLoader, TensorBatchLoader, make_loader
from vaecam.training.module import VAEModule
from vaecam.training.sampler import SeededShuffleSampler
from vaecam.training.trainer import TrainConfig, build_trainer, last_checkpoint

SMALL = {"input_shape": [1, 16, 16], "latent_dim": 4, "channels": [4, 8], "hidden": 16}


class SmallSprites(DSpritesProcedural):
    """dSprites-like renderer over a few factor values (192 images), for speed."""

    factor_sizes = (1, 3, 2, 2, 4, 4)


def _bytes_dataset(n: int = 45, seed: int = 0) -> TensorDataset:
    """Random 8-bit images (n, 1, 16, 16) as float32 code / 255, as the real datasets give."""
    codes = torch.randint(0, 256, (n, 1, 16, 16), generator=torch.Generator().manual_seed(seed))
    return TensorDataset(codes.to(torch.uint8).float() / 255)


def _all_items(dataset: Dataset) -> torch.Tensor:
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([i[0] if isinstance(i, (tuple, list)) else i for i in items])


def _images(batches: list) -> list[torch.Tensor]:
    return [b[0] if isinstance(b, list) else b for b in batches]


# --- exactness: uint8 codes decode to the Dataset's floats, bit for bit ------------------------


def test_decode_table_is_float32_division_by_255() -> None:
    one_by_one = [torch.tensor(float(c), dtype=torch.float32) / 255 for c in range(256)]
    via_float64 = torch.arange(256, dtype=torch.float64).div(255).float()  # MNIST's arithmetic
    assert torch.equal(in_memory._DECODE, torch.stack(one_by_one))
    assert torch.equal(in_memory._DECODE, via_float64)


def test_ucsd_frames_held_in_memory_equal_the_dataset_bitwise(tmp_path: Path) -> None:
    root = make_ucsd_like(tmp_path, "UCSDped2", n_train_clips=2, n_test_clips=1,
                          frames_per_clip=6, size=(72, 48), ext=".jpg")
    dataset = UCSDTrainFrames(root, 20)
    images = load_in_memory(dataset, chunk=5)
    assert images.codes.dtype == torch.uint8 and images.codes.shape == (12, 1, 20, 20)
    assert images.divides_exactly  # the CPU's float32 division reproduces the table
    expected = _all_items(dataset)
    assert torch.equal(images.batch(torch.arange(12)), expected)
    images.divides_exactly = False  # the table lookup used where division differs (some GPUs)
    assert torch.equal(images.batch(torch.arange(12)), expected)


def test_mnist_mvtec_and_dsprites_in_memory_equal_their_datasets_bitwise(
        synth_mvtec_root: Path) -> None:
    mnist = one_class_split(load_digits("bundled"), 3, seed=0).train_dataset()
    mvtec = MVTecTrain(synth_mvtec_root, "synthetic", size=32)
    sprites = SmallSprites().torch_dataset()
    for dataset in (mnist, mvtec, sprites):
        images = load_in_memory(dataset, chunk=100)
        rows = torch.randperm(len(dataset))[:50]
        assert torch.equal(images.batch(rows), _all_items(dataset)[rows]), type(dataset)
    assert dataset_bytes(sprites) == 192 * 64 * 64


def test_non_8bit_images_are_refused() -> None:
    with pytest.raises(DataError, match="not 8-bit values"):
        encode_exact(torch.full((1, 1, 2, 2), 0.3))
    with pytest.raises(DataError, match="not 8-bit values"):
        encode_exact(torch.zeros(1, 1, 2, 2, dtype=torch.float64))


# --- same batches as the DataLoader path -------------------------------------------------------


def _pair(dataset: Dataset, batch: int, seed: int, shuffle: bool):
    return (make_loader(dataset, batch, seed, shuffle),
            make_loader(dataset, batch, seed, shuffle, in_memory=True))


@pytest.mark.parametrize("shuffle", [True, False])
def test_same_batches_as_the_dataloader_over_two_epochs(shuffle: bool) -> None:
    dataset = _bytes_dataset(45)
    reference, loader = _pair(dataset, 8, 3, shuffle)
    assert isinstance(reference, ResumableLoader) and isinstance(loader, TensorBatchLoader)
    assert len(loader) == len(reference) == 6
    for epoch in (0, 1):
        reference.sampler.set_epoch(epoch)
        loader.sampler.set_epoch(epoch)
        expected, got = list(reference), list(loader)
        assert all(isinstance(b, list) and len(b) == 1 for b in got)  # as a DataLoader collates
        assert [len(b) for b in _images(got)] == [8, 8, 8, 8, 8, 5]
        for a, b in zip(_images(expected), _images(got), strict=True):
            assert b.dtype == torch.float32 and torch.equal(a, b)


def test_tensor_items_give_tensor_batches(synth_ucsd_root: Path) -> None:
    dataset = UCSDTrainFrames(synth_ucsd_root, 16)
    reference, loader = _pair(dataset, 5, 0, True)
    for a, b in zip(reference, loader, strict=True):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)


def test_mid_epoch_resume_gives_the_remaining_batches_of_the_dataloader() -> None:
    dataset = _bytes_dataset(45)
    reference, first = _pair(dataset, 8, 5, True)
    for loader in (reference, first):
        loader.sampler.set_epoch(1)
    straight = _images(list(reference))
    partial = iter(first)
    taken = [next(partial)[0] for _ in range(2)]
    state = first.state_dict()
    assert state == {"epoch": 1, "batches": 2}
    _, resumed = _pair(dataset, 8, 5, True)  # a new process: fresh sampler and loader
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(1)
    rest = _images(list(resumed))
    assert len(rest) == 4 and resumed.state_dict() == {"epoch": 1, "batches": 6}
    for a, b in zip(straight, taken + rest, strict=True):
        assert torch.equal(a, b)
    resumed.sampler.set_epoch(2)  # the skip applies to the stored epoch only
    assert len(list(resumed)) == 6


@pytest.mark.parametrize("world", [2, 3])
def test_per_rank_shards_match_the_dataloader(monkeypatch, world: int) -> None:
    dataset = _bytes_dataset(45)
    for rank in range(world):
        monkeypatch.setattr(SeededShuffleSampler, "_rank_and_world",
                            staticmethod(lambda r=rank: (r, world)))
        reference, loader = _pair(dataset, 4, 1, True)
        assert len(loader) == len(reference)
        for a, b in zip(_images(list(reference)), _images(list(loader)), strict=True):
            assert torch.equal(a, b)


# --- memory check before loading ---------------------------------------------------------------


class CountingSprites(SmallSprites):
    """Counts rendered images: the size check must come before any."""

    rendered = 0

    def observations_from_factors(self, factors):
        CountingSprites.rendered += len(factors)
        return super().observations_from_factors(factors)


def test_a_dataset_that_does_not_fit_is_refused_before_reading() -> None:
    dataset = CountingSprites().torch_dataset()
    nbytes = 192 * 64 * 64  # 0.75 MiB
    with pytest.raises(ConfigError) as info:
        load_in_memory(dataset, "cpu", available=lambda device: nbytes)  # needs nbytes / 0.8
    message = str(info.value)
    assert message.startswith("--data-on-device: dataset of 0.75 MiB does not fit in the "
                              "0.75 MiB free in host memory") and "\n" not in message
    fake_gpu = torch.device("cuda", 0)
    with pytest.raises(ConfigError, match=r"0\.75 MiB does not fit in the 0\.50 MiB free on "
                                          r"cuda:0"):
        in_memory.check_fits(nbytes, fake_gpu, available=lambda device: nbytes * 2 // 3)
    assert CountingSprites.rendered == 0
    images = load_in_memory(dataset, "cpu", available=lambda device: nbytes * 2)
    assert len(images) == 192 and CountingSprites.rendered == 192


def test_memory_and_device_helpers() -> None:
    free = available_memory(torch.device("cpu"))
    assert free is None or free > 0
    assert training_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert training_device("auto") == torch.device("cpu")


# --- through Lightning ---------------------------------------------------------------------------


def _fit(out: Path, loader, steps: int, resume: bool = False) -> Path:
    cfg = TrainConfig(out_dir=out, max_epochs=-1, max_steps=steps, batch_size=8, seed=3,
                      progress_bar=False, accelerator="cpu", checkpoint_every_n_steps=1,
                      log_every_n_steps=1)
    trainer = build_trainer(cfg, has_validation=False)
    module = VAEModule("mnist-vae", SMALL, seed=7)
    trainer.fit(module, train_dataloaders=loader, weights_only=True,
                ckpt_path=last_checkpoint(out) if resume else None)
    return last_checkpoint(out)


def test_lightning_training_is_identical_with_both_loaders_and_resumes_mid_epoch(
        tmp_path: Path) -> None:
    """8 steps over 6-step epochs: the DataLoader run, the in-memory run, and an in-memory run
    stopped after 4 steps and resumed in a new loader, end with bitwise equal weights."""
    dataset = _bytes_dataset(45)
    reference = _fit(tmp_path / "dataloader", make_loader(dataset, 8, 3, True), 8)
    straight = _fit(tmp_path / "memory", make_loader(dataset, 8, 3, True, in_memory=True), 8)
    _fit(tmp_path / "split", make_loader(dataset, 8, 3, True, in_memory=True), 4)
    resumed = _fit(tmp_path / "split", make_loader(dataset, 8, 3, True, in_memory=True), 8,
                   resume=True)
    a, b, c = (read_checkpoint(p) for p in (reference, straight, resumed))
    assert a["global_step"] == b["global_step"] == c["global_step"] == 8
    init = VAEModule("mnist-vae", SMALL, seed=7).state_dict()
    assert any(not torch.equal(init[k], v) for k, v in a["state_dict"].items())  # it trained
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
        assert torch.equal(value, c["state_dict"][key]), key
