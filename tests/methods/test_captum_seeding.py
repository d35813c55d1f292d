"""Captum's GradientSHAP and DeepLIFT-SHAP drawn per sample (issue 17): a map depends only on (seed, sample id), it is
Captum's estimator at those draws, and on a linear model it is the closed form w * (x - mean of the baselines)."""
import numpy as np
import pytest
import torch
from torch import nn

from methods import PerSampleSeeded
from methods.baselines import Baseline
from methods.captum_adapter import DeepLiftShap, GradientShap, gradient_shap_estimate
from tests.toy_models import LinearModel

captum_attr = pytest.importorskip("captum.attr")
N = 6


def relu_net():  # module ReLUs, no max-pool: Captum's DeepLIFT rules are exact on it
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(3)
    return relu_net(), torch.randn(N, 3, 8, 8, generator=gen), torch.arange(N) % 3, torch.tensor([14, 2, 33, 7, 90, 5])


@pytest.mark.parametrize("build", [lambda: GradientShap(n_samples=4, n_baselines=3, stdevs=0.1, seed=1),
                                   lambda: DeepLiftShap(n_baselines=3, seed=1)], ids=["gradient_shap", "deeplift_shap"])
def test_a_samples_map_depends_only_on_the_seed_and_its_id(build, data):
    model, x, t, ids = data
    explainer = build()
    assert isinstance(explainer, PerSampleSeeded)
    whole = explainer(model, x, t, ids=ids)
    in_twos = torch.cat([explainer(model, x[i:i + 2], t[i:i + 2], ids=ids[i:i + 2]) for i in range(0, N, 2)])
    torch.testing.assert_close(in_twos, whole, rtol=1e-5, atol=1e-6)
    shard = torch.arange(N)[1::3]
    torch.testing.assert_close(explainer(model, x[shard], t[shard], ids=ids[shard]), whole[shard], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(explainer(model, x, t, ids=ids + 1), whole)
    torch.testing.assert_close(explainer(model, x, t), explainer(model, x, t, ids=torch.arange(N)))


def test_gradient_shap_is_captums_estimator_at_captums_own_draws(data):
    """Captum's GradientShap draws (NumPy) baseline indices, (torch) input noise, then (NumPy) a; replayed from the same
    seeds into gradient_shap_estimate, they give Captum's map."""
    model, x, t, _ = data
    k, stdevs, distribution = 5, 0.2, torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(8))
    method = captum_attr.GradientShap(model)
    np.random.seed(11), torch.manual_seed(11)
    theirs = method.attribute(x.clone().requires_grad_(), baselines=distribution, n_samples=k, stdevs=stdevs, target=t).detach()
    np.random.seed(11), torch.manual_seed(11)
    pick = torch.as_tensor(np.random.choice(len(distribution), k * N))
    noise = torch.normal(0, torch.tensor(stdevs).repeat(N * k, 3, 8, 8))
    alpha = torch.tensor(np.random.uniform(0.0, 1.0, N * k), dtype=x.dtype)
    ours = gradient_shap_estimate(method, model, x, t, distribution[pick].view(N, k, 3, 8, 8), alpha.view(N, k), noise.view(N, k, 3, 8, 8))
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)


def test_deeplift_shap_is_captums_on_each_images_own_distribution(data):
    model, x, t, ids = data
    explainer = DeepLiftShap(n_baselines=3, seed=4)
    ours = explainer(model, x, t, ids=ids)
    baselines = explainer._baselines(x, ids)
    assert baselines.shape == (N, 3, 3, 8, 8)
    for i in (0, 4):  # one image: its distribution is Captum's shared one
        theirs = captum_attr.DeepLiftShap(model).attribute(x[i:i + 1].clone().requires_grad_(), baselines=baselines[i], target=t[i:i + 1])
        torch.testing.assert_close(ours[i:i + 1], theirs.detach(), rtol=1e-5, atol=1e-6)


def test_on_a_linear_model_both_are_w_times_x_minus_the_mean_baseline():
    model = LinearModel(size=8, bias=True).eval()
    gen = torch.Generator().manual_seed(6)
    x, t, ids = torch.randn(3, 3, 8, 8, generator=gen), torch.tensor([2, 0, 1]), torch.tensor([9, 4, 21])
    w = model.linear.weight[t].view(-1, 3, 8, 8)
    draws = torch.stack([Baseline("uniform", "test", 5 + m)(x, ids) for m in range(3)], 1)  # seeds seed, seed + 1, ...
    torch.testing.assert_close(DeepLiftShap(n_baselines=3, seed=5)(model, x, t, ids=ids), w * (x - draws.mean(1)), rtol=1e-4, atol=1e-6)
    # one baseline per image: every GradientSHAP point uses it, and the gradient is w everywhere
    torch.testing.assert_close(GradientShap(n_baselines=1, n_samples=4, seed=5)(model, x, t, ids=ids), w * (x - draws[:, 0]), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="gradient_shap.stdevs must be a number >= 0"):
        GradientShap(stdevs=-1.0)
    with pytest.raises(ValueError, match="return_convergence_delta is not supported"):
        GradientShap(return_convergence_delta=True)
