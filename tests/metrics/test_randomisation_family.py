"""Random logit, efficient MPRT and smooth MPRT: controls that ignore the model or the class, and known answers."""
from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import spearmanr

from harness.models import SmallCNN
from methods.saliency import Saliency
from metrics.efficient_mprt import EfficientMPRT, histogram_entropy
from metrics.random_logit import RandomLogit
from metrics.smooth_mprt import SmoothMPRT
from tests.toy_models import LinearModel, assert_same_snapshot, model_snapshot


class InputMap:
    """Ignores the model and the class: must fail every randomisation test."""

    def __call__(self, model, inputs, targets):
        return inputs.abs()


class Gradient:
    """The gradient of a linear model: w_c, a different map for each class."""

    def __call__(self, model, inputs, targets):
        return model.linear.weight[targets].detach().view_as(inputs).clone()


def test_random_logit_separates_class_sensitive_maps():
    model = LinearModel(size=8, classes=5)
    x = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    t = model(x).argmax(1)
    control = RandomLogit(seed=0)(model, x, t, InputMap()(model, x, t), explainer=InputMap())
    torch.testing.assert_close(control.scores, torch.ones(6), atol=1e-6, rtol=0)
    grad = RandomLogit(similarity="spearman", seed=0)
    res = grad(model, x, t, Gradient()(model, x, t), explainer=Gradient())
    other = res.extras["other_class"].long()
    assert (other != t).all() and other.max() < 5
    w = model.linear.weight.detach()
    for i in range(6):   # Spearman of two different classes' weights
        pooled = w.view(-1, 3, 8, 8).sum(1).flatten(1)
        assert res.scores[i].item() == pytest.approx(spearmanr(pooled[t[i]], pooled[other[i]]).statistic, abs=1e-5)
    assert res.scores.abs().max() < 0.5
    again = grad(model, x, t, Gradient()(model, x, t), explainer=Gradient())
    assert torch.equal(again.extras["other_class"], res.extras["other_class"])
    with pytest.raises(ValueError, match="explainer"):
        grad(model, x, t, x)


def test_histogram_entropy():
    binary = torch.zeros(1, 4, 4)
    binary[0, :2] = 1.0
    assert histogram_entropy(binary, 10)[0].item() == pytest.approx(math.log(2))
    assert histogram_entropy(torch.ones(1, 4, 4), 10)[0] == 0
    spread = torch.arange(16.0).view(1, 4, 4)
    assert histogram_entropy(spread, 16)[0].item() == pytest.approx(math.log(16))


def test_efficient_mprt_ratio():
    torch.manual_seed(0)
    model = SmallCNN(width=4).eval()
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    t = model(x).argmax(1)
    before = model_snapshot(model)
    control = EfficientMPRT(seed=0)(model, x, t, InputMap()(model, x, t), explainer=InputMap())
    assert_same_snapshot(before, model_snapshot(model))
    torch.testing.assert_close(control.scores, torch.ones(3))             # ignores the parameters: ratio 1
    reference = {k: v.clone() for k, v in model.state_dict().items()}

    def blocky_then_noisy(m, inputs, targets):
        same = all(torch.equal(v, reference[k]) for k, v in m.state_dict().items())
        if same:   # two values: entropy ln 2
            return (torch.arange(16.0).view(1, 1, 1, 16) < 8).float().expand(len(inputs), 3, 16, 16).clone()
        return torch.randn(inputs.shape, generator=torch.Generator().manual_seed(5))

    res = EfficientMPRT(n_bins=10, seed=0)(model, x, t, blocky_then_noisy(model, x, t), explainer=blocky_then_noisy)
    torch.testing.assert_close(res.extras["entropy_before"], torch.full((3,), math.log(2)))
    assert (res.scores > 2).all() and res.higher_is_better


def test_smooth_mprt_cascade():
    torch.manual_seed(0)
    model = SmallCNN(width=4).eval()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    t = model(x).argmax(1)
    control = SmoothMPRT(n_noise=2, max_layers=2, seed=0)(model, x, t, x, explainer=InputMap())
    torch.testing.assert_close(control.scores, torch.ones(2))              # same seeded noise before and after: identical maps
    sal = Saliency()
    res = SmoothMPRT(n_noise=2, max_layers=3, seed=0)(model, x, t, sal(model, x, t), explainer=sal)
    assert res.curves.shape == (2, 3) and (res.scores < 0.9).all() and not torch.isnan(res.curves).any()
    with pytest.raises(ValueError, match="smooth_mprt.n_noise"):
        SmoothMPRT(n_noise=0)
