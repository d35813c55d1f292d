"""Input invariance, non-sensitivity and sufficiency: known answers."""
from __future__ import annotations

import pytest
import torch

from harness.models import SmallCNN
from metrics.input_invariance import InputInvariance
from metrics.non_sensitivity import NonSensitivity
from metrics.sufficiency import Sufficiency
from tests.toy_models import LinearModel, assert_same_snapshot, model_snapshot, relu_cnn


class Gradient:
    def __call__(self, model, inputs, targets):
        x = inputs.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(model(x).gather(1, targets.view(-1, 1)).sum(), x)
        return g


class GradientTimesInput(Gradient):
    def __call__(self, model, inputs, targets):
        return inputs * super().__call__(model, inputs, targets)


@pytest.mark.parametrize("model", [LinearModel(size=8), relu_cnn(bias=True), SmallCNN(width=4).eval()], ids=["linear", "padded_conv", "small_cnn"])
def test_gradient_is_input_invariant_and_gradient_times_input_is_not(model):
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    t = model(x).argmax(1)
    before = model_snapshot(model)
    grad = InputInvariance()(model, x, t, Gradient()(model, x, t), explainer=Gradient())
    assert_same_snapshot(before, model_snapshot(model))
    assert grad.scores.max() < 1e-5 and torch.equal(grad.extras["invariant"], torch.ones(3))
    gxi = InputInvariance(shift=0.5)(model, x, t, GradientTimesInput()(model, x, t), explainer=GradientTimesInput())
    g = Gradient()(model, x, t)
    expected = (0.5 * g).flatten(1).norm(dim=1) / (x * g).flatten(1).norm(dim=1)   # (x + m) g - x g = m g
    torch.testing.assert_close(gxi.scores, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="input_invariance.shift"):
        InputInvariance(shift=0)


def test_non_sensitivity_on_a_model_that_ignores_half_the_pixels():
    model = LinearModel(size=4, bias=True)
    with torch.no_grad():
        model.linear.weight.view(3, 3, 4, 4)[:, :, :2] = 0          # the top half of the image is ignored
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    t = model(x).argmax(1)
    exact = (x * model.linear.weight[t].view(2, 3, 4, 4)).detach()
    ns = NonSensitivity(granularity="pixel")
    assert torch.equal(ns(model, x, t, exact).scores, torch.zeros(2))
    everywhere = ns(model, x, t, torch.ones_like(x))                 # attributes the ignored half too
    assert torch.equal(everywhere.scores, torch.full((2,), 0.5)) and torch.equal(everywhere.extras["nonzero_but_unused"], torch.full((2,), 0.5))
    half = exact.clone()
    half[:, :, 2:3] = 0                                              # zero on a used row: 4 of 16 pixels
    res = ns(model, x, t, half)
    assert torch.equal(res.extras["zero_but_used"], torch.full((2,), 0.25)) and torch.equal(res.scores, torch.full((2,), 0.25))


def test_sufficiency_counts_neighbours_with_the_same_prediction():
    model = LinearModel(size=4, classes=3)
    x = torch.randn(6, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    pred = model(x).argmax(1)
    basis = torch.eye(48).view(48, 3, 4, 4)
    by_class = basis[pred]                                           # same map within a class, orthogonal across
    has_peer = torch.tensor([(pred == p).sum() > 1 for p in pred])
    with pytest.warns(UserWarning, match="no neighbour within the threshold"):
        res = Sufficiency()(model, x, pred, by_class)
    assert res.dropped == {"no neighbour within the threshold": int((~has_peer).sum())}
    has_peer = torch.tensor([(pred == p).sum() > 1 for p in pred])
    assert torch.equal(torch.isnan(res.scores), ~has_peer) and (res.scores[has_peer] == 1).all()
    same = Sufficiency()(model, x, pred, torch.ones_like(x))         # everything is everyone's neighbour
    expected = torch.tensor([((pred == p).sum() - 1) / 5 for p in pred])
    torch.testing.assert_close(same.scores, expected.float())
    assert torch.equal(same.extras["neighbours"], torch.full((6,), 5.0))
