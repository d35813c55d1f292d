"""Expected Gradients (analytic, on a linear model) and the completeness check of the Captum adapter's
difference/path classes (DeepLIFT refused where it does not sum to f(x) - f(x'), IG/GradientSHAP warned)."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from harness.models.small_vit import small_vit
from methods.expected_gradients import ExpectedGradients
from tests.toy_models import LinearModel


@pytest.fixture(scope="module")
def linear():
    model = LinearModel(size=8, bias=True).eval()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    return model, x, torch.tensor([0, 2, 1])


def test_expected_gradients_of_a_linear_model_is_w_times_x_minus_the_mean_reference(linear):
    model, x, t = linear
    w = model.linear.weight[t].view(3, 3, 8, 8)
    others = torch.stack([x[[j for j in range(3) if j != i]].mean(0) for i in range(3)])  # the batch's other images
    torch.testing.assert_close(ExpectedGradients(n_samples=4)(model, x, t), w * (x - others), rtol=1e-5, atol=1e-6)
    background = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(7))  # a reference set from the data
    torch.testing.assert_close(ExpectedGradients(n_samples=10, background=background, internal_batch_size=7)(model, x, t),
                               w * (x - background.mean(0)), rtol=1e-5, atol=1e-6)


def test_expected_gradients_refuses_a_batch_of_one_and_bad_backgrounds_in_one_line(linear):
    model, x, t = linear
    with pytest.raises(ValueError, match="needs >= 2 images in the batch"):
        ExpectedGradients()(model, x[:1], t[:1])
    with pytest.raises(ValueError, match="expected_gradients.background must be"):
        ExpectedGradients(background=[1.0])
    with pytest.raises(ValueError, match="background images have shape"):
        ExpectedGradients(background=torch.zeros(2, 3, 4, 4))(model, x, t)


def test_expected_gradients_completeness_holds_in_expectation_on_a_relu_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    x, t = torch.randn(4, 3, 4, 4, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1, 2, 0])
    maps = ExpectedGradients(n_samples=3 * 400)(net, x, t)  # every reference 400 times, a uniform
    with torch.no_grad():
        logits = net(x)
        expected = torch.stack([logits[i, t[i]] - logits[[j for j in range(4) if j != i], t[i]].mean() for i in range(4)])
    torch.testing.assert_close(maps.sum(dim=(1, 2, 3)), expected, rtol=0.05, atol=0.02 * expected.abs().max().item())


def test_captum_deeplift_is_refused_in_one_line_where_it_does_not_sum_to_the_logit_change():
    adapter = pytest.importorskip("methods.captum_adapter")
    pytest.importorskip("captum.attr")
    torch.manual_seed(0)
    relu_net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    x, t = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        maps = adapter.DeepLift()(relu_net, x, t)  # module ReLUs: Captum's rescale rule is exact, no warning of ours
    assert not [w for w in caught if "f(baseline)" in str(w.message)]
    assert adapter.completeness_gap(relu_net, x, t, maps, torch.zeros_like(x)) < 1e-4
    vit = small_vit(image_size=8, num_layers=1).eval()  # LayerNorm, attention, GELU: no DeepLIFT rule in Captum
    torch.nn.init.normal_(vit.heads.head.weight)
    for cls in (adapter.DeepLift, lambda: adapter.DeepLiftShap(n_baselines=2)):
        with pytest.raises(ValueError, match="has no rule for encoder.layers.encoder_layer_0.ln_1 \\(LayerNorm\\)") as info:
            cls()(vit, x, t)
        assert "\n" not in str(info.value)

    class Functional(nn.Module):  # a functional ReLU (no module for Captum to hook; found by tracing), or a product
        def __init__(self, product: bool):
            super().__init__()
            self.conv, self.gate, self.head, self.product = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 1), nn.Linear(4, 3), product

        def forward(self, inputs):
            z = self.conv(inputs) * self.gate(inputs) if self.product else nn.functional.relu(self.conv(inputs) - 0.3)
            return self.head(z.mean(dim=(2, 3)))

    with pytest.raises(ValueError, match="cannot hook the functional relu in forward") as info:
        adapter.DeepLift()(Functional(product=False).eval(), x, t)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="do not sum to f\\(x\\) - f\\(baseline\\)") as info:  # caught by the sum
        adapter.DeepLift(baseline="uniform")(Functional(product=True).eval(), x, t)
    assert "\n" not in str(info.value)
    with pytest.warns(UserWarning, match="raise captum.n_steps"):  # IG with 2 steps on a ViT: off by more than 5 %
        adapter.Captum("IntegratedGradients", n_steps=2)(vit, x, t)
