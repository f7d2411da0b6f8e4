"""compute_maps: one shared forward pass, no side effects on the model, batch independence."""

from __future__ import annotations

import pytest
import torch
from torch.nn.modules import module as torch_module

from vaecam.attention import LatentStats
from vaecam.errors import ConfigError
from vaecam.maps import build_map, cheap_maps, compute_maps, parse_maps
from vaecam.maps.mean_diff import mean_image
from vaecam.models import build_model

SHARING = ["recon-abs", "recon-sq", "ssim", "grad-elbo", "grad-kl", "grad-recon", "combi"]


def _mnist(seed=0):
    torch.manual_seed(seed)
    return build_model("mnist-vae", input_shape=(1, 12, 12), latent_dim=4, channels=(3, 5),
                       hidden=16)


def _images(n=3, seed=0):
    return torch.rand((n, 1, 12, 12), generator=torch.Generator().manual_seed(seed))


def _all_methods(model):
    stats = LatentStats.from_batches(model, [_images(6, seed=7)])
    return parse_maps("all", {"projection": {"steps": 2}, **_mean_option()}) + [
        build_map("attention", method="normal-difference", stats=stats),
        build_map("attention", method="2", grad_norm="rms-image", layer="encoder.0"),
        build_map("attention-x-recon", method="2", activation="abs"),
    ]


def _mean_option():
    """mean-diff's mean training image, from images the tests do not map."""
    return {"mean-diff": {"mean_image": mean_image([_images(6, seed=9)])}}


class Counter:
    """Wrap a bound method on one instance and count its calls."""

    def __init__(self, model, name):
        self.calls = 0
        original = getattr(model, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        setattr(model, name, counted)


def _hooks(model):
    dicts = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
             "_state_dict_hooks", "_load_state_dict_pre_hooks")
    local = sum(len(getattr(m, d)) for m in model.modules() for d in dicts)
    global_ = sum(len(getattr(torch_module, d)) for d in (
        "_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
        "_global_backward_pre_hooks"))
    return local, global_


def test_no_side_effects_on_the_model():
    model = _mnist()
    model.train()
    model.decoder.eval()  # a mixed state must come back exactly
    model.fc_logvar.weight.requires_grad_(False)
    methods = _all_methods(model)  # before recording: LatentStats resets sub-module flags
    model.decoder.eval()
    flags = {name: m.training for name, m in model.named_modules()}
    requires = {name: p.requires_grad for name, p in model.named_parameters()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = _hooks(model)
    x = _images()
    x_copy = x.clone()
    maps = compute_maps(model, x, methods)
    assert len(maps) == 16  # every registered method, attention in three settings
    assert all(p.grad is None for p in model.parameters())
    assert {name: m.training for name, m in model.named_modules()} == flags
    assert {name: p.requires_grad for name, p in model.named_parameters()} == requires
    assert _hooks(model) == hooks == (0, 0)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert torch.equal(x, x_copy) and x.grad is None and not x.requires_grad
    assert all(not m.requires_grad and m.grad_fn is None for m in maps.values())
    assert torch.is_grad_enabled()


def test_no_side_effects_when_a_method_fails():
    model = _mnist()
    model.train()
    with pytest.raises(ConfigError):  # raised inside the forward pass, by the engine's hook
        compute_maps(model, _images(), [build_map("recon-abs"),
                                        build_map("attention", layer="encoder.5")])
    assert all(m.training for m in model.modules())
    assert _hooks(model) == (0, 0)


def test_one_forward_pass_shared_by_reconstruction_and_gradient_maps():
    model = _mnist()
    encode, decode = Counter(model, "encode"), Counter(model, "decode")
    maps = compute_maps(model, _images(), parse_maps(",".join(SHARING)))
    assert set(maps) == set(SHARING)
    assert (encode.calls, decode.calls) == (1, 1)


def test_attention_map_of_one_setting_is_computed_once_per_batch():
    model = _mnist()
    encode = Counter(model, "encode")
    compute_maps(model, _images(), parse_maps("cheap", _mean_option()))
    # one shared forward + one attention pass shared by attention and attention-x-recon; the
    # trivial references run no model
    assert encode.calls == 2
    encode.calls = 0
    # settings that differ only in activation share the signed maps: still one attention pass
    compute_maps(model, _images(), [build_map("attention"),
                                    build_map("attention-x-recon", activation="abs")])
    assert encode.calls == 2
    encode.calls = 0
    compute_maps(model, _images(), [build_map("attention"), build_map("attention", method="2")])
    assert encode.calls == 2  # one attention pass per method, no shared forward needed


def test_projection_costs_one_forward_per_step():
    model = _mnist()
    encode = Counter(model, "encode")
    compute_maps(model, _images(), [build_map("projection", steps=4)])
    assert encode.calls == 4


def test_maps_do_not_depend_on_the_batch():
    """Each image's map is its own (eval mode, per-sample sums): batch of 1 == row of a batch;
    the only batch-dependent setting is combi's authors' batch-wide normalisation."""
    model = _mnist(seed=3)
    x = _images(4, seed=3)
    methods = _all_methods(model)
    batch = compute_maps(model, x, methods)
    for i in (0, 3):
        single = compute_maps(model, x[i : i + 1], methods)
        for label, maps in single.items():
            assert maps.shape == (1, 12, 12)
            torch.testing.assert_close(maps[0], batch[label][i], rtol=1e-4, atol=1e-6,
                                       msg=label)
    combi_batch = build_map("combi", normalize="batch")
    assert not torch.allclose(combi_batch(model, x[:1])[0], combi_batch(model, x)[0])


def test_cheap_maps_are_finite_and_not_constant():
    model = _mnist(seed=4)
    maps = compute_maps(model, _images(2, seed=4), parse_maps("cheap", _mean_option()))
    assert set(maps) == set(cheap_maps())
    for label, m in maps.items():
        assert torch.isfinite(m).all(), label
        assert m.flatten(1).std(dim=1).min() > 0, label


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_maps_on_cuda_match_cpu():
    model = _mnist(seed=5)
    x = _images(3, seed=5)
    methods = _all_methods(model)
    cpu = compute_maps(model, x, methods)
    gpu = compute_maps(model.cuda(), x.cuda(), methods)
    for label, maps in gpu.items():
        assert maps.device.type == "cuda"
        torch.testing.assert_close(maps.cpu(), cpu[label], rtol=1e-3, atol=1e-5, msg=label)
