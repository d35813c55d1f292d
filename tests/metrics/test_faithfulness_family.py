"""Faithfulness correlation, Sensitivity-N, faithfulness estimate, monotonicity (both), AOPC, selectivity, IROF: known answers on linear models."""
from __future__ import annotations

import math

import pytest
import torch

from metrics.faithfulness_correlation import FaithfulnessCorrelation
from metrics.faithfulness_estimate import FaithfulnessEstimate
from metrics.irof import IROF
from metrics.monotonicity import Monotonicity
from metrics.monotonicity_correlation import MonotonicityCorrelation
from metrics.region_perturbation import RegionPerturbation
from metrics.selectivity import Selectivity
from metrics.sensitivity_n import SensitivityN
from tests.toy_models import LinearModel


@pytest.fixture(scope="module")
def linear():
    """A linear model (with bias), 4 images of 8 px, and the exact contribution map x . w_c of the predicted class."""
    model = LinearModel(size=8, bias=True)
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))   # seed 1: not the weights' own draws
    with torch.no_grad():
        t = model(x).argmax(1)
        exact = x * model.linear.weight[t].view(4, 3, 8, 8)
    return model, x, t, exact


@pytest.mark.parametrize("metric", [FaithfulnessCorrelation(n_perturbations=16, seed=0), SensitivityN(fractions=(0.05, 0.5), n_perturbations=8, seed=0),
                                    FaithfulnessEstimate(patch_size=2), FaithfulnessEstimate(granularity="pixel", correlation="spearman")],
                         ids=["faithfulness_correlation", "sensitivity_n", "faithfulness_estimate", "faithfulness_estimate_pixel_spearman"])
def test_exact_linear_map_correlates_one_and_its_negation_minus_one(linear, metric):
    model, x, t, exact = linear
    torch.testing.assert_close(metric(model, x, t, exact).scores, torch.ones(4))
    torch.testing.assert_close(metric(model, x, t, -exact).scores, -torch.ones(4))
    noise = metric(model, x, t, torch.randn(x.shape, generator=torch.Generator().manual_seed(1)))
    assert noise.scores.abs().max() < 0.9 and noise.higher_is_better


def test_subsets_are_seeded_per_sample_and_batch_invariant(linear):
    model, x, t, exact = linear
    rand = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    fc = FaithfulnessCorrelation(n_perturbations=8, seed=5)
    whole = fc(model, x, t, rand).scores
    parts = torch.cat([fc(model, x[i:i + 2], t[i:i + 2], rand[i:i + 2], indices=torch.arange(i, i + 2)).scores for i in (0, 2)])
    torch.testing.assert_close(parts, whole)
    assert not torch.equal(FaithfulnessCorrelation(n_perturbations=8, seed=6)(model, x, t, rand).scores, whole)
    sn = SensitivityN(fractions=(0.1, 0.3), n_perturbations=4, seed=0)(model, x, t, exact)
    assert sn.curves.shape == (4, 2) and torch.equal(sn.curve_x, torch.tensor([0.1, 0.3]))
    with pytest.warns(UserWarning, match="4 of 4 samples undefined"):
        assert torch.isnan(fc(model, x, t, torch.zeros_like(x)).scores).all()


def test_monotonicity_correlation_compares_magnitudes(linear):
    model, x, t, exact = linear
    mc = MonotonicityCorrelation(patch_size=2)
    torch.testing.assert_close(mc(model, x, t, exact).scores, torch.ones(4))
    torch.testing.assert_close(mc(model, x, t, -exact).scores, torch.ones(4))   # |a| and |change| agree in rank
    assert mc(model, x, t, torch.rand(x.shape)).scores.abs().max() < 0.7


def test_monotonicity_counts_rising_steps():
    model = LinearModel(size=4, bias=False)
    x = torch.randn(3, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    t = model(x).argmax(1)
    contribution = (x * model.linear.weight[t].view(3, 3, 4, 4)).detach()
    mono = Monotonicity(steps=1 / 16)    # one pixel per step: each step adds exactly one pixel's contribution
    res = mono(model, x, t, contribution)
    torch.testing.assert_close(res.scores, (contribution.sum(1).flatten(1) >= 0).float().mean(1))
    assert torch.equal(res.extras["monotone"], (res.scores == 1).float())
    with torch.no_grad():                 # all contributions positive: every step rises
        model.linear.weight.abs_()
    xp = x.abs()
    res = mono(model, xp, t, xp)
    assert torch.equal(res.scores, torch.ones(3)) and torch.equal(res.extras["monotone"], torch.ones(3))


def test_aopc_is_the_mean_cumulative_drop(linear):
    model, x, t, exact = linear
    rp = RegionPerturbation(granularity="pixel", steps=1 / 64, substrate="mean", score="logit", abpc=True)
    res = rp(model, x, t, exact)
    contrib = exact.sum(1).flatten(1).sort(1, descending=True).values
    drops = torch.cat([torch.zeros(4, 1), contrib.cumsum(1)], 1)       # k = 0..64
    torch.testing.assert_close(res.scores, drops.mean(1), atol=1e-4, rtol=1e-4)
    assert (res.extras["aopc_gap"] > 0).all() and res.higher_is_better
    rand = rp(model, x, t, torch.randn(x.shape, generator=torch.Generator().manual_seed(2)))
    assert (res.scores > rand.scores).all()                          # the greedy order of contributions is the best


def test_selectivity_and_irof_prefer_the_exact_map(linear):
    model, x, t, exact = linear
    sel = Selectivity(patch_size=2)
    assert (sel(model, x, t, exact).scores < sel(model, x, t, -exact).scores).all() and not sel.abpc
    irof = IROF(granularity="patch", patch_size=2)
    good, bad = irof(model, x, t, exact), irof(model, x, t, -exact)
    assert (good.scores > bad.scores).all() and good.higher_is_better
    torch.testing.assert_close(good.curves[:, 0], torch.ones(4))      # p_k / p_0 starts at 1
    # IROF ranks by the mean relevance of a feature: on superpixels of unequal sizes this differs from the sum
    assert IROF.mean_relevance and not Selectivity.mean_relevance


@pytest.mark.parametrize("factory, match", [
    (lambda: FaithfulnessCorrelation(subset_size=1.0), "faithfulness_correlation.subset_size"),
    (lambda: FaithfulnessCorrelation(n_perturbations=1), "n_perturbations"),
    (lambda: FaithfulnessCorrelation(substrate="road"), "substrate"),
    (lambda: SensitivityN(fractions=()), "sensitivity_n.fractions"),
    (lambda: FaithfulnessEstimate(granularity="superpixel"), "faithfulness_estimate.granularity"),
    (lambda: MonotonicityCorrelation(correlation="kendall"), "monotonicity_correlation.correlation"),
    (lambda: Monotonicity(tolerance=-1), "monotonicity.tolerance"),
])
def test_new_faithfulness_constructor_errors(factory, match):
    with pytest.raises(ValueError, match=match) as err:
        factory()
    assert "\n" not in str(err.value) and "got" in str(err.value)


def test_nan_for_non_finite_maps(linear):
    model, x, t, exact = linear
    bad = exact.clone()
    bad[0, 0, 0, 0] = math.nan
    with pytest.warns(UserWarning, match="non-finite"):
        res = FaithfulnessEstimate(patch_size=2)(model, x, t, bad)
    assert math.isnan(res.scores[0]) and res.dropped == {"non-finite attributions": 1}
