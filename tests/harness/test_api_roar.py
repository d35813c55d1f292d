"""ROAR through harness.evaluate: it retrains on a training split given as train=..., and refuses in one line without one."""
import pytest
import torch
from torch import nn

from harness import evaluate
from harness.build import ConfigError
from tests.metrics.test_roar import SIZE, Oracle, make_data


def linear() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 2)).eval()


def test_evaluate_refuses_roar_without_a_training_split_before_any_work():
    x, y = make_data(8, 1)
    with pytest.raises(ConfigError, match=r"^metric roar retrains the model .* pass train=\(images, labels\)") as err:
        evaluate(linear(), x, labels=y, methods=["random"], metrics=["roar"])
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="unknown key 'epoch' for training"):
        evaluate(linear(), x, labels=y, methods=["random"], metrics=["roar"], train=make_data(16, 0), training={"epoch": 1})


def test_evaluate_runs_roar_on_the_given_training_split_known_answer():
    """The class lives in 6 known pixels: removing them (oracle) and retraining leaves chance; 6 random pixels do not."""
    (train_x, train_y), (test_x, test_y) = make_data(256, 0), make_data(64, 1)
    frame = evaluate(linear(), test_x, labels=test_y, targets="label", methods={"oracle": Oracle(), "random": {}},
                     metrics={"roar": {"fractions": [0.1]}}, train=(train_x, train_y),
                     training={"epochs": 5, "lr": 0.05, "batch_size": 64})
    acc = frame.groupby("method")["score"].mean()          # one fraction: the score is the correctness
    assert acc["random"] > 0.9 and acc["oracle"] < 0.6          # measured: 1.000 and 0.469 (chance 0.5)
    assert set(frame["metric"]) == {"roar"} and len(frame) == 128
