"""ROAR (metrics/roar.py) on a case with a known answer: the class lives in six known pixels.

Removing exactly those pixels (an oracle map) and retraining leaves nothing to learn: test accuracy
falls to chance. Removing as many random pixels leaves the class in the image: accuracy stays near 1.
The retraining here is a test double of the harness's :class:`harness.training.Retrainer` (a logistic
regression trained full-batch from a fixed seed); tests/harness/training/test_retrain.py checks the real one.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from methods.controls import Random
from metrics import ROAR, Retrain

SIZE, KEY = 8, [0, 1, 2, 8, 9, 10]   # 6 of 64 pixels (t = 0.1 removes round(6.4) = 6) carry the class


def make_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=gen)
    x = torch.randn(n, 1, SIZE * SIZE, generator=gen)
    x[:, 0, KEY] = (labels.float() * 4 - 2).view(-1, 1) + 0.1 * torch.randn(n, len(KEY), generator=gen)
    return x.view(n, 1, SIZE, SIZE), labels


class LogisticRetrain:
    """A :class:`metrics.types.Retrain` double: a linear classifier trained from seed 0; counts the image requests."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.train_images, self.train_labels = images, labels
        self.identities: list[dict] = []

    def __call__(self, images, identity: dict) -> nn.Module:
        self.identities.append(identity)
        x = images()
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 2))
        opt = torch.optim.Adam(model.parameters(), lr=0.1)
        for _ in range(150):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), self.train_labels).backward()
            opt.step()
        return model.eval()


class Oracle:
    """Attribution 1 on the class-carrying pixels, 0 elsewhere."""

    def __call__(self, model, inputs, targets):
        maps = torch.zeros(len(inputs), 1, SIZE * SIZE)
        maps[:, :, KEY] = 1.0
        return maps.view(len(inputs), 1, SIZE, SIZE)

    def forward_passes_per_sample(self, shape):
        return 0


@pytest.fixture(scope="module")
def data():
    (train_x, train_y), (test_x, test_y) = make_data(256, 0), make_data(64, 1)
    return train_x, train_y, test_x, test_y


def roar_accuracy(explainer, data, fractions=(0.1,)):
    train_x, train_y, test_x, test_y = data
    retrain = LogisticRetrain(train_x, train_y)
    assert isinstance(retrain, Retrain)
    model = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 2)).eval()   # the run's model: the maps do not depend on it here
    result = ROAR(fractions=list(fractions), seed=0)(model, test_x, test_y, explainer(model, test_x, test_y), labels=test_y,
                                                      explainer=explainer, indices=torch.arange(len(test_y)), retrain=retrain)
    return result, retrain


def test_removing_the_class_pixels_drops_to_chance_and_random_removal_does_not(data):
    oracle, _ = roar_accuracy(Oracle(), data)
    rand, _ = roar_accuracy(Random(seed=0), data)
    assert not oracle.higher_is_better
    assert oracle.curves.shape == (64, 1) and oracle.curve_x.tolist() == pytest.approx([0.1])
    assert oracle.aggregate() < 0.7         # chance (0.5) within the noise of 64 test images
    assert rand.aggregate() > 0.9           # 6 random pixels rarely hit all six class pixels


def test_headline_is_the_normalised_area_under_the_accuracy_curve(data):
    result, retrain = roar_accuracy(Oracle(), data, fractions=(0.1, 0.5))
    accuracy = result.curves.mean(0)
    assert result.aggregate() == pytest.approx(float((accuracy[0] + accuracy[1]) / 2), abs=1e-6)
    assert [i["fraction"] for i in retrain.identities] == [0.1, 0.5]     # one retrained model per t, each with its t
    assert all(i["metric"] == "roar" and i["pooling"] == "abs_sum" for i in retrain.identities)


def test_ties_are_broken_at_random_not_by_position():
    from metrics.roar import ranks

    keys = torch.tensor([[3, 1, 2, 0], [0, 1, 2, 3]])
    rank = ranks(torch.zeros(2, 2, 2), keys)
    assert rank[0].tolist() == [3, 1, 2, 0] and rank[1].tolist() == [0, 1, 2, 3]
    assert ranks(torch.tensor([[[0.0, 5.0], [1.0, -1.0]]]), keys[:1])[0].tolist() == [2, 0, 1, 3]


@pytest.mark.parametrize("kwargs, match", [
    ({"fractions": [0.5, 0.3]}, "strictly increasing"), ({"fractions": [0.0]}, r"\(0, 1\)"), ({"fractions": []}, "non-empty"),
    ({"pooling": "mean"}, "roar.pooling"), ({"batch_size": 0}, "roar.batch_size"),
])
def test_bad_settings_fail_in_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ROAR(**kwargs)


def test_without_a_retrain_in_the_context_it_says_so():
    x = torch.zeros(2, 1, SIZE, SIZE)
    with pytest.raises(ValueError, match="context\\['retrain'\\]"):
        ROAR()(nn.Flatten(), x, torch.zeros(2, dtype=torch.long), x, labels=torch.zeros(2), explainer=Oracle())


class ConstantRetrain(LogisticRetrain):
    """A retraining that failed: the model predicts class 0 whatever the image (loss stuck at ln 2)."""

    def __call__(self, images, identity: dict) -> nn.Module:
        model = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 2))
        nn.init.zeros_(model[1].weight)
        with torch.no_grad():
            model[1].bias.copy_(torch.tensor([1.0, 0.0]))
        return model.eval()


def test_a_retrained_model_that_predicts_one_class_is_warned_about_and_a_trained_one_is_not(data, recwarn):
    train_x, train_y, test_x, test_y = data
    model = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 2)).eval()
    context = {"labels": test_y, "explainer": Random(seed=0), "indices": torch.arange(len(test_y))}
    maps = Random(seed=0)(model, test_x, test_y)
    with pytest.warns(UserWarning, match="retrained at t=0.1 predicts one class .* degenerate"):
        ROAR(fractions=[0.1], seed=0)(model, test_x, test_y, maps, retrain=ConstantRetrain(train_x, train_y), **context)
    recwarn.clear()
    ROAR(fractions=[0.1], seed=0)(model, test_x, test_y, maps, retrain=LogisticRetrain(train_x, train_y), **context)
    assert not [w for w in recwarn if "degenerate" in str(w.message)]
