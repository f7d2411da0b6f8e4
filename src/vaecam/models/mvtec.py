"""The ResNet18-VAE of Liu et al. for MVTec-AD (addendum, Table 3).

Encoder: torchvision's ResNet18 without ``avgpool`` and ``fc`` (512 x S/32 x S/32 features),
flattened, then two Linear layers for mu and logvar. Decoder: two Linear layers, then six
blocks that each double the size (nearest upsampling, Conv2d 3x3, BatchNorm, ReLU), so
256x256 images start from 4x4; the sixth block maps to the image channels and ends in a Sigmoid
instead of BatchNorm + ReLU (a ReLU before the Sigmoid would clamp every output to >= 0.5).
Loss: summed binary cross-entropy + KL. The latent size is not published; 128 by default.

Inputs in [0, 1] are normalised with the ImageNet mean and std inside :meth:`encode` (what
ImageNet weights expect; a fixed affine map otherwise). ``pretrained=True`` loads ImageNet
weights only from the local torch hub cache (never downloads) and records in
``config["pretrained_loaded"]`` whether it did, so that results say which encoder produced them.

Attention layers: the ResNet stages ``encoder.layer1`` .. ``encoder.layer4`` (block outputs,
after their ReLU) or the stem ``encoder.conv1``; :attr:`ResNet18VAE.conv_layers` names them.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import ResNet18_Weights, resnet18

from vaecam.errors import ConfigError
from vaecam.models import register
from vaecam.models.base import VAE

logger = logging.getLogger(__name__)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_UPSAMPLING_BLOCKS = 6


def imagenet_weights_file() -> Path:
    """Where torchvision caches the ResNet18 ImageNet weights (``IMAGENET1K_V1``)."""
    name = Path(ResNet18_Weights.IMAGENET1K_V1.url).name
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _load_imagenet(encoder: nn.Module) -> bool:
    """Load cached ImageNet weights into ``encoder``; False (random init kept) if not cached."""
    path = imagenet_weights_file()
    if not path.is_file():
        logger.warning(
            "no ResNet18 ImageNet weights in the torch hub cache (%s; vaecam never downloads "
            "them); the encoder starts from random weights", path
        )
        return False
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        encoder.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")})
    except (OSError, RuntimeError, KeyError, AttributeError) as exc:
        logger.warning(
            "cannot use %s (%s); the encoder starts from random weights",
            path, " ".join(str(exc).split()),
        )
        return False
    return True


def _block(c_in: int, c_out: int, last: bool) -> nn.Sequential:
    """Double the size, then Conv2d 3x3 + BatchNorm + ReLU (Sigmoid for the last block)."""
    conv = nn.Conv2d(c_in, c_out, 3, padding=1)
    tail: list[nn.Module] = [nn.Sigmoid()] if last else [nn.BatchNorm2d(c_out), nn.ReLU()]
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv, *tail)


@register("resnet18-vae")
class ResNet18VAE(VAE):
    """ResNet18 encoder + upsampling conv decoder for RGB images of side a multiple of 64."""

    default_layer = "encoder.layer4"
    conv_layers = {
        "conv1": "encoder.conv1",
        "layer1": "encoder.layer1",
        "layer2": "encoder.layer2",
        "layer3": "encoder.layer3",
        "layer4": "encoder.layer4",
    }

    def __init__(
        self,
        input_shape: Sequence[int] = (3, 256, 256),
        latent_dim: int = 128,
        hidden: int = 1024,
        decoder_channels: Sequence[int] = (512, 256, 128, 64, 32, 16),
        pretrained: bool = False,
        pretrained_loaded: bool | None = None,
    ):
        """``pretrained_loaded`` is set when a checkpoint rebuilds the model: it keeps the record
        of the training run and skips loading ImageNet weights (the checkpoint has them all)."""
        c_in, h, w = (int(s) for s in input_shape)
        if h != w or h % 64 or h < 64:
            raise ConfigError(
                f"the ResNet18-VAE needs square images whose side is a multiple of 64, got {h}x{w}"
            )
        if len(decoder_channels) != _UPSAMPLING_BLOCKS:
            raise ConfigError(
                f"decoder_channels needs {_UPSAMPLING_BLOCKS} values, got {list(decoder_channels)}"
            )
        super().__init__(
            (c_in, h, w),
            latent_dim,
            hidden=hidden,
            decoder_channels=list(decoder_channels),
            pretrained=bool(pretrained),
        )
        net = resnet18(weights=None)
        if c_in != 3:
            net.conv1 = nn.Conv2d(c_in, 64, 7, 2, 3, bias=False)
        names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        self.encoder = nn.Sequential(OrderedDict((n, getattr(net, n)) for n in names))
        if pretrained_loaded is None:
            pretrained_loaded = bool(pretrained) and c_in == 3 and _load_imagenet(self.encoder)
        self.config["pretrained_loaded"] = bool(pretrained_loaded)
        self.pretrained_loaded = bool(pretrained_loaded)
        mean = torch.tensor(_IMAGENET_MEAN if c_in == 3 else (0.5,) * c_in).view(1, -1, 1, 1)
        std = torch.tensor(_IMAGENET_STD if c_in == 3 else (0.25,) * c_in).view(1, -1, 1, 1)
        self.register_buffer("input_mean", mean, persistent=False)
        self.register_buffer("input_std", std, persistent=False)
        flat = 512 * (h // 32) ** 2
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_logvar = nn.Linear(flat, latent_dim)
        start = h // 2**_UPSAMPLING_BLOCKS
        c0 = decoder_channels[0]
        outs = [*decoder_channels[1:], c_in]
        ins = list(decoder_channels)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, c0 * start * start),
            nn.ReLU(),
            nn.Unflatten(1, (c0, start, start)),
            *(_block(a, b, last=i == _UPSAMPLING_BLOCKS - 1) for i, (a, b) in
              enumerate(zip(ins, outs, strict=True))),
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder((x - self.input_mean) / self.input_std).flatten(1)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)
