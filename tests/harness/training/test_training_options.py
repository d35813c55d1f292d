"""Training options: augmentation (known answers), optimisers, per-group accuracies, and the cache key."""
import pytest
import torch
from torch import nn

from harness.cache import model_key as cache_key
from harness.datasets import ImageSplit, SpuriousShapes
from harness.training import augment, summarise


def test_flip_and_shift_are_exact_moves_of_the_pixels():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)
    flipped = augment(x, True, 0, torch.Generator().manual_seed(0))
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))
    m = 2
    shifted = augment(x, False, m, torch.Generator().manual_seed(3))
    padded = nn.functional.pad(x, (m, m, m, m))
    for i in range(2):                       # every output is a 5x5 window of the zero-padded input
        windows = [padded[i, :, a:a + 5, b:b + 5] for a in range(2 * m + 1) for b in range(2 * m + 1)]
        assert any(torch.equal(shifted[i], w) for w in windows)
    assert torch.equal(augment(x, True, m, torch.Generator().manual_seed(5)), augment(x, True, m, torch.Generator().manual_seed(5)))
    assert torch.equal(augment(x, False, 0, torch.Generator()), x)


def test_flips_and_shifts_cover_their_range():
    x = torch.zeros(400, 1, 9, 9)
    x[:, :, 4, 6] = 1                        # one lit pixel right of centre
    out = augment(x, True, 1, torch.Generator().manual_seed(0))
    cols = out.flatten(2).argmax(-1).squeeze(1) % 9
    assert set(cols.tolist()) == {1, 2, 3, 5, 6, 7}   # 6 or its mirror 2, each shifted by -1, 0, +1


class Constant(nn.Module):
    """Always predicts class 0."""

    def forward(self, x):
        return torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 4).float()


def test_group_accuracies_of_a_constant_model_are_known():
    d = SpuriousShapes(seed=0, n_train=32, n_test=64)
    summary = summarise(Constant(), d.split("train"), d.split("test"), torch.device("cpu"), d)
    assert summary["test_accuracy"] == 0.25
    for c in d.class_names:
        for g in d.group_names:
            assert summary[f"group_accuracy/{c}_on_{g}"] == (1.0 if c == "circle" else 0.0)
    assert summary["worst_group_accuracy"] == 0.0
    for variant in ("only_foreground", "only_background", "same_class_background", "other_class_background"):
        assert summary[f"test_accuracy/{variant}"] == 0.25
    assert summary["test_accuracy/bg_gap"] == 0.0


def test_no_groups_no_group_keys():
    data = ImageSplit(torch.zeros(8, 1, 4, 4), torch.zeros(8, dtype=torch.long))
    summary = summarise(Constant(), data, data, torch.device("cpu"))
    assert summary == {"train_accuracy": 1.0, "test_accuracy": 1.0}


def test_cache_key_covers_optimiser_augmentation_and_weights(make_cfg):
    base = make_cfg()
    key = cache_key(base.model, base.dataset, base.seed)
    for override in ("model.training.optimizer=sgd", "model.training.augmentation.max_shift=2",
                     "model.training.augmentation.horizontal_flip=true", "dataset.backgrounds=[stripes,waves,checker,dots]"):
        other = make_cfg(override)
        assert cache_key(other.model, other.dataset, other.seed) != key, override
    resnet = make_cfg("model=resnet18")
    assert cache_key(make_cfg("model=resnet18", "model.weights=DEFAULT").model, resnet.dataset, 0) != cache_key(resnet.model, resnet.dataset, 0)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_each_optimiser_trains_and_is_seeded(optimizer, make_cfg, tmp_path):
    from tests.harness.training.test_model_cache import _train
    cfg = make_cfg(f"model.training.optimizer={optimizer}", "model.training.augmentation.max_shift=1",
                   "model.training.augmentation.horizontal_flip=true", "model.network.width=4")
    first = _train(cfg, tmp_path / "a")
    again = _train(cfg, tmp_path / "b")                            # a fresh cache: trained again, same bytes
    assert not again.cached and torch.equal(first.model.classifier.weight, again.model.classifier.weight)
    assert 0 <= first.summary["train_accuracy"] <= 1 and "worst_group_accuracy" in first.summary
