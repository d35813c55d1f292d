"""Monitored training (harness/training/loop.py): a seeded held-out split, best-epoch selection by validation loss,
early stopping, He initialisation and the one-class warning; all off by default, so a model YAML trains as before."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from harness.build import ConfigError
from harness.datasets import ImageSplit
from harness.training import check_training, train
from harness.training.loop import INIT, PATIENCE, VALIDATION_FRACTION, kaiming_init, validate, validation_split

CPU = torch.device("cpu")
BASE = {"optimizer": "adam", "epochs": 4, "batch_size": 16, "lr": 0.01, "weight_decay": 0.0}


def settings(**extra) -> OmegaConf:
    return OmegaConf.create({"training": {**BASE, **extra}})


def net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def noise(n: int, seed: int) -> ImageSplit:
    """Images without class information: the held-out loss can only rise once the model starts memorising."""
    gen = torch.Generator().manual_seed(seed)
    return ImageSplit(torch.randn(n, 1, 6, 6, generator=gen), torch.randint(0, 3, (n,), generator=gen))


def test_no_model_yaml_turns_monitoring_on():
    for path in sorted(Path("conf/model").glob("*.yaml")):
        training = OmegaConf.load(path).get("training") or {}
        assert training.get("validation_fraction", VALIDATION_FRACTION) == 0.0, path.name
        assert training.get("patience", PATIENCE) is None and training.get("init", INIT) == "default", path.name


def test_the_defaults_spelled_out_train_the_same_weights_as_leaving_them_out():
    data = noise(48, 1)
    plain, explicit = net(), net()
    history = train(plain, data, settings(), 0, CPU)
    train(explicit, data, settings(validation_fraction=0.0, patience=None, init="default"), 0, CPU)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), explicit.state_dict().values()))
    assert history["epochs_run"] == 4 and "validation_loss" not in history


def test_the_held_out_split_is_drawn_from_the_seed_and_disjoint():
    fit, held = validation_split(100, 0.2, 3)
    assert len(held) == 20 and len(fit) == 80
    assert sorted(torch.cat([fit, held]).tolist()) == list(range(100))
    assert torch.equal(held, validation_split(100, 0.2, 3)[1])
    assert not torch.equal(held, validation_split(100, 0.2, 4)[1])
    assert validation_split(100, 0.0, 3) == (None, None)
    with pytest.raises(ConfigError, match="holds out 0 of 3"):
        validation_split(3, 0.1, 0)


def test_the_model_kept_is_the_epoch_with_the_lowest_validation_loss_and_patience_stops_early():
    data = noise(64, 2)
    cfg = settings(epochs=30, validation_fraction=0.25, patience=2)
    model = net()
    history = train(model, data, cfg, 0, CPU)
    assert history["epochs_run"] < 30 and history["epochs_run"] - history["best_epoch"] == 2   # stopped 2 epochs after the best
    _, held = validation_split(64, 0.25, 0)
    loss, accuracy, _ = validate(model, data.images[held], data.labels[held], 16, CPU)
    assert loss == pytest.approx(history["validation_loss"], abs=1e-6) and accuracy == history["validation_accuracy"]
    again = net()
    assert train(again, data, cfg, 0, CPU) == history   # deterministic
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_kaiming_init_has_he_variance_zero_biases_and_depends_on_the_seed_alone():
    wide = nn.Sequential(nn.Conv2d(8, 64, 3), nn.Linear(500, 400))
    kaiming_init(wide, 5)
    conv, linear = wide[0], wide[1]
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (8 * 9)), rel=0.05)
    assert linear.weight.std().item() == pytest.approx(math.sqrt(2 / 500), rel=0.05)
    assert not conv.bias.any() and not linear.bias.any()
    other = nn.Sequential(nn.Conv2d(8, 64, 3), nn.Linear(500, 400))
    torch.manual_seed(123)   # the global generator plays no part
    kaiming_init(other, 5)
    assert torch.equal(other[1].weight, linear.weight)


def test_a_validated_model_that_predicts_one_class_is_warned_about():
    data = ImageSplit(torch.zeros(40, 1, 6, 6), torch.arange(40) % 3)   # blank images: nothing to learn
    with pytest.warns(UserWarning, match=r"training: the kept model \(epoch \d+\) predicts one class for 100% of the held-out images"):
        train(net(), data, settings(epochs=2, validation_fraction=0.25), 0, CPU)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(net(), data, settings(epochs=2), 0, CPU)   # unmonitored: as before, no check


@pytest.mark.parametrize(("extra", "message"), [
    ({"validation_fraction": 1.0}, r"validation_fraction must be a number in \[0, 1\); got 1.0"),
    ({"validation_fraction": True}, r"validation_fraction must be a number in \[0, 1\); got True"),
    ({"validation_fraction": 0.2, "patience": 0}, "patience must be a positive integer or null; got 0"),
    ({"patience": 3}, r"patience needs held-out images: set model.training.validation_fraction in \(0, 1\)"),
    ({"init": "xavier"}, "init must be one of default, kaiming; got 'xavier'"),
])
def test_bad_monitoring_settings_are_refused_in_one_line(extra, message):
    with pytest.raises(ConfigError, match=message):
        check_training(settings(**extra))


def test_a_held_out_fraction_too_small_for_the_training_split_is_refused_in_pre_flight(make_cfg, tmp_path):
    from harness.runner import prepare

    check_training(settings(validation_fraction=0.2), n_train=100)           # 20 of 100: fine
    cfg = make_cfg("dataset.n_train=256", "+model.training.validation_fraction=0.001", f"paths.root={tmp_path}")
    with pytest.raises(ConfigError, match="validation_fraction=0.001 holds out 0 of 256 training images"):
        prepare(cfg)                                                          # before any run, split or model exists
    assert not (tmp_path / "mlflow.db").exists()
