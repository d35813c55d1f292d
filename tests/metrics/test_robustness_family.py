"""Average sensitivity, local Lipschitz estimate and relative stability: known answers with identity-like explainers."""
from __future__ import annotations

import math

import pytest
import torch

from harness.models import SmallCNN
from metrics.average_sensitivity import AverageSensitivity
from metrics.continuity import Continuity
from metrics.local_lipschitz import LocalLipschitz
from metrics.max_sensitivity import MaxSensitivity
from metrics.relative_stability import RelativeStability, relative
from tests.toy_models import LinearModel


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    model = SmallCNN(width=4).eval()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    return model, x, model(x).argmax(1)


def scaled(c):
    return lambda m, i, t: c * i.clone()


def test_average_sensitivity_is_the_mean_of_max_sensitivitys_draws(cnn):
    model, x, t = cnn
    kw = dict(radius=0.05, n_samples=5, seed=3)
    avg = AverageSensitivity(**kw)(model, x, t, x, explainer=scaled(1.0))
    mx = MaxSensitivity(**kw)(model, x, t, x, explainer=scaled(1.0))
    torch.testing.assert_close(avg.scores, mx.extras["mean_sensitivity"])
    torch.testing.assert_close(avg.extras["max_sensitivity"], mx.scores)
    assert (avg.scores <= mx.scores).all() and not avg.higher_is_better


def test_local_lipschitz_of_a_linear_explainer_is_its_gain(cnn):
    model, x, t = cnn
    for c in (1.0, -3.0):
        res = LocalLipschitz(n_samples=4, seed=0)(model, x, t, c * x, explainer=scaled(c))
        torch.testing.assert_close(res.scores, torch.full((3,), abs(c)), rtol=1e-5, atol=1e-5)
    fgsm = LocalLipschitz(n_samples=3, perturbation="fgsm")(model, x, t, 2 * x, explainer=scaled(2.0))
    torch.testing.assert_close(fgsm.scores, torch.full((3,), 2.0), rtol=1e-5, atol=1e-5)


def test_relative_stability_kinds(cnn):
    model, x, t = cnn
    kw = dict(n_samples=4, seed=0, radius=0.01)
    # Phi(x) = x: the explanation's relative change equals the input's, so RIS = 1 exactly
    ris = RelativeStability(**kw)(model, x, t, x, explainer=scaled(1.0))
    torch.testing.assert_close(ris.scores, torch.ones(3), rtol=1e-5, atol=1e-5)
    # a constant explanation never changes: every kind scores 0
    const = lambda m, i, tt: torch.ones_like(i)  # noqa: E731
    for kind in ("input", "representation", "output"):
        res = RelativeStability(kind=kind, **kw)(model, x, t, torch.ones_like(x), explainer=const)
        assert torch.equal(res.scores, torch.zeros(3)) and res.extras["kept"].min() > 0
    ros = RelativeStability(kind="output", **kw)
    xs = ros.perturbed(model, x, t, torch.arange(3))
    expected = (relative(x.double().unsqueeze(0), xs.double(), 1e-6) / (model(xs.flatten(0, 1)).view(4, 3, -1) - model(x)).norm(dim=2).double()).amax(0)
    torch.testing.assert_close(ros(model, x, t, x, explainer=scaled(1.0)).scores, expected.float(), rtol=1e-4, atol=1e-4)


def test_relative_stability_leaves_out_perturbations_that_change_the_class(cnn):
    model = LinearModel(size=8)
    x = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    t = model(x).argmax(1)
    with pytest.warns(UserWarning, match="no perturbation keeps the prediction"):
        res = RelativeStability(radius=50.0, n_samples=2, seed=0)(model, x, t, x, explainer=scaled(1.0))
    undefined = torch.isnan(res.scores)
    assert torch.equal(undefined, res.extras["kept"] == 0) and res.dropped.get("no perturbation keeps the prediction", 0) == int(undefined.sum())
    with pytest.raises(ValueError, match="relative_stability.kind"):
        RelativeStability(kind="latent")
    assert (res.extras["kept"] < 1).any()
    model, x, t = cnn
    assert math.isfinite(RelativeStability(kind="representation", n_samples=2, seed=0)(model, x, t, x, explainer=scaled(1.0)).aggregate())


def test_continuity_uses_the_l1_norm_of_the_explanation_change(cnn):
    model, x, t = cnn
    c = Continuity(n_samples=4, seed=0)
    res = c(model, x, t, -2 * x, explainer=scaled(-2.0))
    d = c.perturbed(model, x, t, torch.arange(3)) - x.unsqueeze(0)
    expected = (2 * d.flatten(2).norm(p=1, dim=2) / d.flatten(2).norm(dim=2)).amax(0)
    torch.testing.assert_close(res.scores, expected, rtol=1e-5, atol=1e-5)
    assert (res.scores >= 2).all() and (res.scores <= 2 * math.sqrt(x[0].numel())).all()
