"""Meta-evaluation: the statistics on hand-made score arrays, and one tiny end-to-end call."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.saliency import Saliency
from metrics.complexity import Complexity
from metrics.faithfulness_correlation import FaithfulnessCorrelation
from metrics.meta_evaluation import consistency, meta_evaluate, perturbed_model, tau_a, wilcoxon_p
from tests.toy_models import assert_same_snapshot, model_snapshot, relu_cnn


def test_statistics_on_known_arrays():
    rng = np.random.default_rng(0)
    clean = rng.normal(size=(1, 3, 20))
    assert wilcoxon_p(clean, clean).tolist() == [[1.0, 1.0, 1.0]]            # no change: p = 1
    assert (wilcoxon_p(clean, clean + 1.0) < 1e-3).all()                    # a consistent shift is detected
    assert np.array_equal(tau_a(clean, clean), np.ones((1, 20)))
    assert np.array_equal(tau_a(clean, -clean), -np.ones((1, 20)))
    # ideal metric: unchanged under minor noise, worse (lower, higher is better) under disruption
    ideal = consistency(clean, np.repeat(clean, 2, 0), np.repeat(clean - 5.0, 2, 0), higher_is_better=True)
    assert ideal["iac_nr"] == 1 and ideal["iec_nr"] == 1 and ideal["iec_ar"] == 1 and ideal["iac_ar"] > 0.999
    assert ideal["mc"] > 0.999
    # a metric blind to everything: perfectly resilient, never reactive
    blind = consistency(clean, np.repeat(clean, 2, 0), np.repeat(clean, 2, 0), higher_is_better=True)
    assert blind["iac_ar"] == 0 and blind["iec_ar"] == 0 and blind["mc"] == pytest.approx(0.5)
    flipped = consistency(clean, np.repeat(clean, 2, 0), np.repeat(clean - 5.0, 2, 0), higher_is_better=False)
    assert flipped["iec_ar"] == 0                                           # lower scores are better here: not worse


def gradient_x_input(model, inputs, targets):
    x = inputs.clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(model(x).gather(1, targets.view(-1, 1)).sum(), x)
    return g * inputs


@pytest.mark.slow
def test_meta_evaluate_end_to_end():
    model = relu_cnn(bias=True)
    x = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    before = model_snapshot(model)
    metrics = {"faithfulness_correlation": FaithfulnessCorrelation(n_perturbations=4, seed=0), "complexity": Complexity()}
    res = meta_evaluate(model, x, {"saliency": Saliency(), "gxi": gradient_x_input}, metrics, n_perturbations=2)
    assert_same_snapshot(before, model_snapshot(model))
    s = res.summary.set_index("metric")
    assert list(s.index) == list(metrics) and (s["n"] == 5).all() and (s["minor_agreement"] == 1).all()
    for m in metrics:
        assert 0 <= s.loc[m, "mc"] <= 1 and s.loc[m, "mc_ci_low"] <= s.loc[m, "mc"] <= s.loc[m, "mc_ci_high"]   # t-interval around the mean
        assert res.scores[m]["minor"].shape == (2, 2, 5) and res.scores[m]["clean"].shape == (1, 2, 5)
    assert res.agreement.shape == (2, 2) and res.agreement.loc["complexity", "complexity"] == 1
    again = meta_evaluate(model, x, {"saliency": Saliency(), "gxi": gradient_x_input}, metrics, n_perturbations=2)
    assert again.summary.equals(res.summary)                                # seeded
    inputs_space = meta_evaluate(model, x, {"saliency": Saliency(), "gxi": gradient_x_input}, {"complexity": Complexity()},
                                 n_perturbations=2, space="input")
    assert inputs_space.scores["complexity"]["minor"].shape == (2, 2, 5)
    assert not np.array_equal(inputs_space.scores["complexity"]["minor"], res.scores["complexity"]["minor"])
    with pytest.raises(ValueError, match="space must be"):
        meta_evaluate(model, x, {"s": Saliency()}, metrics, space="latent")
    with pytest.raises(ValueError, match="minor_std < disruptive_std"):
        meta_evaluate(model, x, {"s": Saliency()}, metrics, minor_std=1.0, disruptive_std=0.5)
    assert not torch.equal(perturbed_model(model, 0.1, 0)[0].weight, model[0].weight)
