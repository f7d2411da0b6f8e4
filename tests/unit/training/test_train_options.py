"""Resolved options become the trainer's settings the same way for the CLI and reproduce."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vaecam.errors import ConfigError
from vaecam.training.options import check_accelerator, train_config


def test_train_config_takes_every_option_it_names_and_defaults_the_rest():
    cfg = train_config({"out": "runs/a", "seeds": [4, 5], "max_epochs": 7, "batch_size": 16,
                        "no_progress": True, "checkpoint_every": 3, "devices": "auto",
                        "data_on_device": True}, "mnist")
    assert cfg.out_dir == Path("runs/a") and cfg.experiment == "mnist"
    assert (cfg.seed, cfg.max_epochs, cfg.batch_size) == (4, 7, 16)  # the first seed
    assert cfg.progress_bar is False and cfg.checkpoint_every_n_epochs == 3
    assert cfg.devices == "auto" and cfg.data_on_device is True
    plain = train_config({"out": "o"}, "ucsd")
    assert (plain.seed, plain.max_epochs, plain.max_steps, plain.batch_size) == (0, 1, -1, 128)
    assert (plain.accelerator, plain.precision, plain.resume, plain.overwrite) == (
        "auto", "32-true", False, False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_an_accelerator_this_machine_lacks_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="no CUDA GPU is visible.*--accelerator cpu"):
        train_config({"out": "o", "accelerator": "gpu"}, "mnist")
    check_accelerator("cpu")
    check_accelerator("auto")
