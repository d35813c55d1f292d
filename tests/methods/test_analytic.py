"""Analytic identities that need no reference implementation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import filters

from harness.models import SmallCNN
from methods.baselines import Baseline
from methods.cam import CAM, GradCAM, GradCAMpp
from methods.controls import Random, Sobel
from methods.gradient import Gradient, GradientXInput
from methods.integrated_gradients import RULES, IntegratedGradients
from methods.saliency import Saliency
from methods.smoothgrad import SmoothGrad
from tests.toy_models import LinearModel, relu_cnn


@pytest.fixture(scope="module")
def linear():
    model = LinearModel(size=8).eval()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([0, 1, 2, 0])
    wx = model.linear.weight[t].view(4, 3, 8, 8) * x
    return model, x, t, wx


def test_gradient_x_input_is_w_times_x_on_a_linear_model(linear):
    model, x, t, wx = linear
    torch.testing.assert_close(GradientXInput()(model, x, t), wx, rtol=0, atol=1e-7)


@pytest.mark.parametrize("rule", RULES)
def test_ig_zero_baseline_is_w_times_x_on_a_linear_model(linear, rule):
    model, x, t, wx = linear
    torch.testing.assert_close(IntegratedGradients(n_steps=7, method=rule)(model, x, t), wx, rtol=1e-5, atol=1e-7)


def test_ig_equals_gradient_x_input_on_a_bias_free_relu_net_and_gxi_conserves():
    model = relu_cnn(bias=False)
    x, t = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(4)), torch.tensor([0, 1, 2])
    gxi = GradientXInput()(model, x, t)
    torch.testing.assert_close(IntegratedGradients(n_steps=5, internal_batch_size=4)(model, x, t), gxi, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gxi.sum(dim=(1, 2, 3)), model(x).gather(1, t.view(-1, 1)).squeeze(1), rtol=1e-4, atol=1e-5)
    # riemann_left has a node at a = 0 where all pre-activations vanish and ReLU'(0) = 0: (1 - 1/m) * gxi.
    left = IntegratedGradients(n_steps=4, method="riemann_left")(model, x, t)
    torch.testing.assert_close(left, gxi * 3 / 4, rtol=1e-4, atol=1e-6)


def test_ig_completeness_with_every_baseline():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    x, t = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5)), torch.tensor([0, 3])
    for spec in ("zero", "mean", "blur", "uniform", 0.5, torch.full((1, 3, 1, 1), -0.2)):
        ig = IntegratedGradients(n_steps=64, baseline=spec, blur_sigma=2.0, internal_batch_size=64)
        attr = ig(model, x, t)
        with torch.no_grad():
            gap = (model(x) - model(ig.baseline(x))).gather(1, t.view(-1, 1)).squeeze(1)
        torch.testing.assert_close(attr.sum(dim=(1, 2, 3)), gap, rtol=2e-2, atol=1e-4)


def test_baselines():
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(Baseline("mean", "t")(x)[:, :, 3, 5], x.mean(dim=(2, 3)))
    blurred = Baseline("blur", "t", blur_sigma=1.5)(x)
    assert blurred.shape == x.shape and blurred.std() < x.std()
    noise = Baseline("uniform", "t", seed=3)(x)
    assert torch.equal(noise, Baseline("uniform", "t", seed=3)(x)) and not torch.equal(noise, Baseline("uniform", "t", seed=4)(x))
    assert (noise >= x.amin(dim=(1, 2, 3), keepdim=True)).all() and (noise <= x.amax(dim=(1, 2, 3), keepdim=True)).all()
    assert torch.equal(Baseline([[[[1.0]], [[2.0]], [[3.0]]]], "t")(x)[:, :, 0, 0], torch.tensor([[1.0, 2.0, 3.0]] * 2))
    with pytest.raises(ValueError, match="t.baseline must be one of"):
        Baseline("black", "t")


def test_smoothgrad_variants_on_a_linear_model(linear):
    """The gradient of a linear model ignores the noise: mean = w, squared = w^2, vargrad = 0."""
    model, x, t, wx = linear
    w = model.linear.weight[t].view(4, 3, 8, 8)
    torch.testing.assert_close(SmoothGrad(variant="mean", n_samples=5)(model, x, t), w)
    torch.testing.assert_close(SmoothGrad(variant="squared", n_samples=5)(model, x, t), w.square())
    assert SmoothGrad(variant="vargrad", n_samples=5)(model, x, t).abs().max() < 1e-7
    torch.testing.assert_close(SmoothGrad(GradientXInput(), n_samples=5, noise_level=0.0)(model, x, t), wx)


def test_smoothgrad_does_not_depend_on_batch_size_and_averages_the_wrapped_method():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    x, t = torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 2])
    whole = SmoothGrad(Saliency(), n_samples=5, seed=7)(model, x, t)
    torch.testing.assert_close(SmoothGrad(Saliency(), n_samples=5, seed=7, batch_size=4)(model, x, t), whole)
    assert not torch.equal(whole, SmoothGrad(Saliency(), n_samples=5, seed=8)(model, x, t))
    # the mean of 5 noisy saliency maps, each one of which is a plain Saliency call on a noisy copy
    sg = SmoothGrad(Saliency(), n_samples=5, seed=7, batch_size=3)
    sigma = 0.15 * (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1)
    ids = torch.arange(3)
    manual = torch.stack([Saliency()(model, x + sigma * sg._noise(ids, torch.full((3,), d), x), t) for d in range(5)]).mean(0)
    torch.testing.assert_close(whole, manual)


def test_cam_is_hw_times_unrectified_gradcam_on_a_gap_linear_net():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    x, t = torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 2])
    cam = CAM().layer_map(model, x, t)
    torch.testing.assert_close(cam, GradCAM(relu=False).layer_map(model, x, t) * 64, rtol=1e-4, atol=1e-6)
    # CAM is the class score's spatial decomposition: mean over the map + bias = logit
    torch.testing.assert_close(cam.mean(dim=(1, 2, 3)) + model.classifier.bias[t], model(x).gather(1, t.view(-1, 1)).squeeze(1),
                               rtol=1e-4, atol=1e-5)
    assert GradCAM()(model, x, t).shape == (3, 1, 32, 32)


def test_gradcam_pp_reduces_to_gradcam_weights_for_a_linear_head():
    """For GAP + linear, G_k = w_ck / HW is constant over space, so alpha_k = G^2 / (2 G^2 + S_k G^3)
    with S_k = sum_ab A_k,ab, and the map has the closed form below."""
    torch.manual_seed(0)
    model = SmallCNN().eval()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    feats = model.features(x)
    g = (model.classifier.weight[t] / 64).view(2, -1, 1, 1)
    s = feats.sum(dim=(2, 3), keepdim=True)
    denom = 2 * g**2 + s * g**3
    alpha = torch.where(denom != 0, g**2 / denom, torch.zeros_like(denom))
    w = alpha * g.clamp(min=0) * 64
    expected = (w * feats).sum(1, keepdim=True).clamp(min=0)
    torch.testing.assert_close(GradCAMpp().layer_map(model, x, t), expected, rtol=1e-4, atol=1e-7)


def test_sobel_matches_scikit_image_and_random_is_seeded():
    x = torch.randn(2, 3, 20, 24, generator=torch.Generator().manual_seed(8))
    ours = Sobel()(None, x, torch.tensor([0, 0]))
    ref = np.stack([filters.sobel(img.mean(0).numpy()) for img in x])
    torch.testing.assert_close(ours[:, 0], torch.from_numpy(ref).float(), rtol=1e-5, atol=1e-6)
    a = Random(seed=1)(None, x, torch.tensor([0, 0]))
    assert a.shape == (2, 1, 20, 24) and torch.equal(a, Random(seed=1)(None, x, torch.tensor([0, 0])))
    assert not torch.equal(a, Random(seed=2)(None, x, torch.tensor([0, 0])))


def test_plain_gradient_is_batch_size_invariant():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    x, t = torch.randn(5, 3, 32, 32), torch.tensor([0, 1, 2, 3, 0])
    torch.testing.assert_close(Gradient(batch_size=2)(model, x, t), Gradient()(model, x, t), rtol=1e-5, atol=1e-8)
