"""model=custom: a user's own nn.Module from a module in their own folder, its checkpoint, one-line errors."""
from __future__ import annotations

import importlib
import logging
import sys

import pytest
import torch
from mlflow.tracking import MlflowClient

from harness.build import ConfigError
from harness.preflight import check
from harness.runner import run
from tests.conftest import TINY

USER_MODULE = '''
import torch
from torch import nn

class DigitNet(nn.Module):
    def __init__(self, width=4, in_channels=3, num_classes=2):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))

class FixedSize(nn.Module):  # only takes 3 x 32 x 32 images
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 4)

    def forward(self, x):
        return self.fc(x.flatten(1))
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "mynets.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("mynets", None)
    module = importlib.import_module("mynets")
    torch.manual_seed(0)
    checkpoint = tmp_path / "digitnet.pt"
    torch.save(module.DigitNet(width=6, num_classes=4).state_dict(), checkpoint)  # spurious_shapes has 4 classes
    yield module, checkpoint
    sys.modules.pop("mynets", None)


@pytest.mark.slow
def test_a_users_network_and_checkpoint_run_end_to_end_logged_as_loaded(user_module, make_cfg, caplog):
    module, checkpoint = user_module
    cfg = make_cfg("model=custom", "model.target=mynets.DigitNet", f"model.weights={checkpoint}", "+model.kwargs.width=6",
                   "metric=[deletion]")
    with caplog.at_level(logging.INFO, logger="harness.runner"):
        outcome = run(cfg)
    tags = MlflowClient().get_run(outcome.run_id).data.tags
    assert tags["harness.model_source"] == f"loaded from {checkpoint.resolve()}" and tags["harness.model_cache"] == "not used"
    assert f"(loaded from {checkpoint.resolve()})" in caplog.text and "(cached)" not in caplog.text
    assert outcome.summary.set_index("metric").loc["deletion", "n"] == cfg.eval.n_samples


@pytest.mark.parametrize("overrides, message", [
    (["model.target=nomodule.Net"], "model.target: cannot import module 'nomodule' (No module named 'nomodule')"),
    (["model.target=mynets.Nope"], "model.target: module 'mynets' has no 'Nope'; it has DigitNet, FixedSize"),
    (["model.target=mynets.FixedSize"], "model.target: mynets.FixedSize cannot take the dataset's input shape (N, 3, 16, 16)"),
    (["model.target=mynets.DigitNet", "+model.kwargs.width=8", "model.weights=CKPT"],
     "does not fit mynets.DigitNet (shape checkpoint vs network: conv.weight (6, 3, 3, 3) vs (8, 3, 3, 3)"),
    (["model.target=mynets.DigitNet", "+model.kwargs.depth=8"], "model.target: mynets.DigitNet(depth=8, in_channels=3, num_classes=4) failed"),
    (["model.target=mynets.DigitNet", "model.kwargs.width=8"], "add a new key with +model.kwargs.width=..."),
    ([], "model.target is required"),
])
def test_what_does_not_fit_stops_the_command_in_one_line(user_module, harness_home, overrides, message):
    _, checkpoint = user_module
    with pytest.raises(ConfigError) as error:
        check([*TINY, "model=custom", *(o.replace("CKPT", str(checkpoint)) for o in overrides)])
    assert message in str(error.value) and "\n" not in str(error.value)
