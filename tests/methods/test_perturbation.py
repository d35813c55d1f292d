"""KernelSHAP, LIME and RISE: exact cases on additive models, and mask properties."""
from __future__ import annotations

import pytest
import torch

from methods._surrogate import segments
from methods.kernel_shap import KernelSHAP
from methods.lime import LIME
from methods.rise import RISE
from tests.toy_models import LinearModel


@pytest.fixture(scope="module")
def additive():
    model = LinearModel(size=16).eval()
    gen = torch.Generator().manual_seed(9)
    blocks = torch.nn.functional.interpolate(torch.randn(3, 3, 4, 4, generator=gen), size=16)  # structure for superpixels
    x = blocks + 0.05 * torch.randn(3, 3, 16, 16, generator=gen)
    t = torch.tensor([0, 1, 2])
    return model, x, t


def feature_sums(model, x, t, base, seg, m):
    """Exact Shapley values of a linear model: each feature's sum of w * (x - baseline)."""
    contrib = (model.linear.weight[t].view_as(x) * (x - base)).sum(1)
    return torch.zeros(x.shape[0], m).scatter_add_(1, seg.flatten(1), contrib.flatten(1))


@pytest.mark.parametrize("segmentation,baseline", [("patches", "zero"), ("slic", 0.5), ("felzenszwalb", "mean")])
def test_kernel_shap_recovers_exact_shapley_values_of_an_additive_model(additive, segmentation, baseline):
    model, x, t = additive
    shap = KernelSHAP(n_samples=300, segmentation=segmentation, n_segments=6, patch_size=8, baseline=baseline, batch_size=128)
    phi, seg, counts = shap.attributions(model, x, t)
    assert (counts >= 2).any()
    exact = feature_sums(model, x, t, shap.baseline(x), seg, phi.shape[1])
    torch.testing.assert_close(phi, exact, rtol=1e-4, atol=1e-5)
    area_map = KernelSHAP(n_samples=300, segmentation=segmentation, n_segments=6, patch_size=8, baseline=baseline, spread="area")(model, x, t)
    with torch.no_grad():
        gap = (model(x) - model(shap.baseline(x))).gather(1, t.view(-1, 1)).squeeze(1)
    torch.testing.assert_close(area_map.sum(dim=(1, 2, 3)), gap, rtol=1e-4, atol=1e-5)  # efficiency


def test_lime_without_penalty_recovers_the_linear_model(additive):
    model, x, t = additive
    lime = LIME(n_samples=200, segmentation="patches", patch_size=8, alpha=0.0)
    seg, _ = segments(x, "patches", 0, 0.0, 8)
    exact = feature_sums(model, x, t, torch.zeros_like(x), seg, 4)
    torch.testing.assert_close(lime(model, x, t), exact.gather(1, seg.flatten(1)).view(3, 1, 16, 16), rtol=1e-3, atol=1e-5)
    shrunk = LIME(n_samples=200, segmentation="patches", patch_size=8, alpha=10.0)(model, x, t)
    assert shrunk.abs().sum() < lime(model, x, t).abs().sum()  # the ridge penalty shrinks


def test_rise_masks_and_saliency_of_a_constant_score():
    rise = RISE(n_masks=500, cell_size=4, p=0.5, seed=3, batch_size=128)
    masks = rise.masks(16, 16, torch.tensor([11]))(torch.zeros(500, dtype=torch.long), torch.arange(500))
    assert masks.shape == (500, 1, 16, 16) and masks.min() >= 0 and masks.max() <= 1
    assert abs(masks.mean().item() - 0.5) < 0.05
    again = RISE(n_masks=500, cell_size=4, p=0.5, seed=3).masks(16, 16, torch.tensor([11]))
    assert torch.equal(masks, again(torch.zeros(500, dtype=torch.long), torch.arange(500)))
    # the masks are the sample's own: another id, other masks; the same id at another position, the same masks
    other = rise.masks(16, 16, torch.tensor([12, 11]))
    assert not torch.equal(masks[:5], other(torch.zeros(5, dtype=torch.long), torch.arange(5)))
    assert torch.equal(masks[:5], other(torch.ones(5, dtype=torch.long), torch.arange(5)))

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.ones(x.shape[0], 2) * torch.tensor([3.0, 1.0])

    x = torch.randn(2, 3, 16, 16)
    saliency = RISE(n_masks=500, cell_size=4, score="logit", batch_size=128)(Constant(), x, torch.tensor([0, 1]))
    # S(u) = c * mean_i M_i(u) / p ~ c: the estimator is unbiased for a constant score
    assert abs(saliency[0].mean().item() - 3.0) < 0.15 and abs(saliency[1].mean().item() - 1.0) < 0.05


def test_rise_is_batch_size_invariant(additive):
    model, x, t = additive
    a = RISE(n_masks=100, cell_size=4, batch_size=7)(model, x, t)
    b = RISE(n_masks=100, cell_size=4, batch_size=None)(model, x, t)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
