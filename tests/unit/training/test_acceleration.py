"""Channels-last, torch.compile helpers and bf16-mixed training on the CPU."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from vaecam.attention import AttentionExplainer
from vaecam.errors import ConfigError
from vaecam.models import build_model
from vaecam.training import acceleration
from vaecam.training.acceleration import (
    ChannelsLast,
    CompileModel,
    batch_to_channels_last,
    compile_model,
    compile_unavailable,
    to_channels_last,
)
from vaecam.training.checkpoints import load_model, read_checkpoint
from vaecam.training.module import VAEModule
from vaecam.training.trainer import TrainConfig, fit

UCSD_SMALL = {"input_shape": [1, 24, 24], "latent_dim": 4, "channels": [4, 8, 8], "hidden": 16}
MNIST_SMALL = {"input_shape": [1, 16, 16], "latent_dim": 4, "channels": [4, 8], "hidden": 16}


def _batch(n: int = 5, size: int = 24) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(0))


def _model(name: str = "ucsd-vae", config: dict | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, **(config or UCSD_SMALL)).eval()


def test_channels_last_model_computes_the_same_and_keeps_its_parameters() -> None:
    plain, fast = _model(), _model()
    params = list(fast.parameters())
    assert to_channels_last(fast) is fast
    assert all(a is b for a, b in zip(params, fast.parameters(), strict=True))
    conv = fast.encoder[2].weight  # 4 input channels: the two layouts differ
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    x = _batch()
    with torch.no_grad():
        mu_a, _ = plain.encode(x)
        mu_b, _ = fast.encode(batch_to_channels_last(x))
    torch.testing.assert_close(mu_a, mu_b, atol=1e-5, rtol=1e-5)
    maps_a = AttentionExplainer(plain, "encoder.2").method1(x)
    maps_b = AttentionExplainer(fast, "encoder.2").method1(x)
    torch.testing.assert_close(maps_a, maps_b, atol=1e-5, rtol=1e-4)


def test_batch_to_channels_last_converts_only_images() -> None:
    x, labels = _batch(), torch.arange(5)
    out = batch_to_channels_last([x, labels, "name"])
    assert isinstance(out, list) and out[1] is labels and out[2] == "name"
    assert out[0].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out[0], x)


def test_compile_is_refused_with_one_line_where_it_cannot_work(monkeypatch) -> None:
    monkeypatch.setattr(acceleration.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    assert "no C++ compiler" in compile_unavailable("cpu")
    with pytest.raises(ConfigError) as info:
        compile_model(_model(), "cpu")
    assert str(info.value).startswith("--compile: torch.compile is unavailable here (no C++")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="unavailable here"):
        CompileModel("cpu")
    assert "does not compile" in compile_unavailable("mps")
    if not torch.cuda.is_available():
        assert compile_unavailable("cuda") in ("Triton is not installed",
                                               "no CUDA device is visible")


def test_compiled_children_keep_state_dict_keys_and_results() -> None:
    plain, compiled = _model(), _model()
    keys = list(plain.state_dict())
    compile_model(compiled, "cpu", backend="eager")  # dynamo tracing without a C++ build
    assert list(compiled.state_dict()) == keys
    x = _batch()
    with torch.no_grad():
        torch.testing.assert_close(plain.encode(x)[0], compiled.encode(x)[0])


class AutocastProbe(VAEModule):
    """Records whether training steps ran under bf16 autocast."""

    def training_step(self, batch, batch_idx):
        self.autocast = (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
        return super().training_step(batch, batch_idx)


def _losses(run: Path) -> list[float]:
    with open(run / "logs" / "csv" / "version_0" / "metrics.csv") as handle:
        return [float(r["train/loss_step"]) for r in csv.DictReader(handle)
                if r.get("train/loss_step")]


def test_bf16_mixed_training_on_cpu_gives_finite_losses_and_fp32_checkpoints(
        tmp_path: Path) -> None:
    data = TensorDataset(_batch(24, 16))
    cfg = TrainConfig(out_dir=tmp_path / "run", max_epochs=-1, max_steps=4, batch_size=8,
                      precision="bf16-mixed", accelerator="cpu", progress_bar=False,
                      log_every_n_steps=1)
    module = AutocastProbe("mnist-vae", MNIST_SMALL, seed=1)
    path = fit(module, data, cfg, callbacks=[ChannelsLast()])
    assert module.autocast == (True, torch.bfloat16)
    losses = _losses(tmp_path / "run")
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    state = read_checkpoint(path)["state_dict"]
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    model, meta = load_model(path, expected="mnist-vae")
    assert next(model.parameters()).dtype == torch.float32
    with torch.no_grad():
        mu, _ = model.encode(_batch(2, 16))
    assert torch.isfinite(mu).all()
    initial = VAEModule("mnist-vae", MNIST_SMALL, seed=1).model.state_dict()
    assert any(not torch.equal(initial[k], v) for k, v in model.state_dict().items())
