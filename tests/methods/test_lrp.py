"""LRP: zennit's composites as the reference, and conservation identities."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from harness.models import SmallCNN
from methods.gradient import GradientXInput
from methods.lrp import LRP
from tests.toy_models import ResidualNet, relu_cnn

zennit_composites = pytest.importorskip("zennit.composites")
from zennit.canonizers import SequentialMergeBatchNorm  # noqa: E402
from zennit.torchvision import ResNetCanonizer  # noqa: E402


def randomize_batchnorm(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics, so that BatchNorm folding is really exercised."""
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model.eval()


def zennit_lrp(model, composite, x, t):
    x = x.clone().requires_grad_(True)
    with composite.context(model) as modified:
        out = modified(x)
        onehot = torch.zeros_like(out).scatter_(1, t.view(-1, 1), 1.0)
        (relevance,) = torch.autograd.grad(out, x, onehot * out)
    return relevance


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


COMPOSITES = {
    "epsilon_plus": lambda can: zennit_composites.EpsilonPlus(canonizers=can),
    "epsilon_plus_flat": lambda can: zennit_composites.EpsilonPlusFlat(canonizers=can),
    "epsilon_alpha2_beta1": lambda can: zennit_composites.EpsilonAlpha2Beta1(canonizers=can),
    "epsilon_alpha2_beta1_flat": lambda can: zennit_composites.EpsilonAlpha2Beta1Flat(canonizers=can),
    "epsilon_gamma_box": lambda can: zennit_composites.EpsilonGammaBox(low=-3.0, high=3.0, canonizers=can),
}


def small_cnn():
    torch.manual_seed(0)
    return SmallCNN().eval(), []


def vgg11_bn():
    torch.manual_seed(0)
    return randomize_batchnorm(torchvision.models.vgg11_bn(weights=None, num_classes=4)), [SequentialMergeBatchNorm()]


def resnet18():
    torch.manual_seed(0)
    return randomize_batchnorm(torchvision.models.resnet18(weights=None, num_classes=4)), [ResNetCanonizer()]


@pytest.mark.parametrize("factory", [small_cnn, pytest.param(vgg11_bn, marks=pytest.mark.slow),
                                     pytest.param(resnet18, marks=pytest.mark.slow)], ids=["small_cnn", "vgg11_bn", "resnet18"])
def test_composites_match_zennit(factory):
    model, canonizers = factory()
    n = 2 if factory is small_cnn else 1
    x, t = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(3)), torch.tensor([1, 3][:n])
    for name, make in COMPOSITES.items():
        ours = LRP(composite=name, batch_size=1)(model, x, t)
        assert rel_err(ours, zennit_lrp(model, make(canonizers), x, t)) < 1e-4, name


def test_without_canonization_we_match_zennit_without_canonizers():
    model, _ = vgg11_bn()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([0, 2])
    ours = LRP(composite="epsilon_plus", canonize=False)(model, x, t)
    assert rel_err(ours, zennit_lrp(model, zennit_composites.EpsilonPlus(), x, t)) < 1e-4
    assert rel_err(ours, LRP(composite="epsilon_plus")(model, x, t)) > 1e-3  # folding BatchNorm matters


def test_lrp0_conserves_and_equals_gradient_x_input_on_a_bias_free_relu_net():
    model = relu_cnn(bias=False)
    x, t = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(4)), torch.tensor([0, 1, 2])
    relevance = LRP(composite="epsilon", epsilon=0.0, stabilizer=0.0)(model, x, t)
    logit = model(x).gather(1, t.view(-1, 1)).squeeze(1)
    torch.testing.assert_close(relevance.sum(dim=(1, 2, 3)), logit, rtol=1e-4, atol=1e-6)
    assert rel_err(relevance, GradientXInput()(model, x, t)) < 1e-4


def test_residual_adds_neither_duplicate_nor_lose_relevance(monkeypatch):
    """Custom residual adds (``x + f(x)`` and ``out += x``): LRP-0 conserves f(x) and equals gradient x input
    on this bias-free ReLU net; without the residual split the same hooks inflate the total."""
    import contextlib

    import methods.lrp

    model = ResidualNet().eval()
    x, t = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(5)), torch.tensor([0, 1, 2])
    relevance = LRP(composite="epsilon", epsilon=0.0, stabilizer=0.0)(model, x, t)
    logit = model(x).gather(1, t.view(-1, 1)).squeeze(1)
    torch.testing.assert_close(relevance.sum(dim=(1, 2, 3)), logit, rtol=1e-4, atol=1e-6)
    assert rel_err(relevance, GradientXInput()(model, x, t)) < 1e-4
    monkeypatch.setattr(methods.lrp, "ResidualSplit", lambda stabilizer: contextlib.nullcontext())
    naive = LRP(composite="epsilon", epsilon=0.0, stabilizer=0.0)(model, x, t).sum(dim=(1, 2, 3))
    assert ((naive - logit).abs() > 0.1 * logit.abs()).all()


def test_resnet_with_our_lrp_conserves_relevance_up_to_the_bias_share():
    """LRP-0 on ResNet18 (BatchNorm folded, biases present): sum R = f(x) - bias share, as for gradient x input."""
    model, _ = resnet18()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    relevance = LRP(composite="epsilon", epsilon=0.0, stabilizer=0.0)(model, x, t).sum(dim=(1, 2, 3))
    logit = model(x).gather(1, t.view(-1, 1)).squeeze(1)
    assert (relevance - logit).abs().max() < 0.5 * logit.abs().max() + 1e-3  # no doubling per block (2^8 x)


def test_epsilon_loses_more_relevance_as_epsilon_grows():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    x, t = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    logit = model(x).gather(1, t.view(-1, 1)).squeeze(1)
    kept = [(LRP(composite="epsilon", epsilon=e)(model, x, t).sum(dim=(1, 2, 3)) / logit).mean().item()
            for e in (0.0, 1e-3, 1e-2, 1e-1, 1.0)]
    assert all(a > b for a, b in zip(kept, kept[1:])), kept
    assert kept[-1] < 0.9 * kept[0]


def test_baseline_is_none_and_bad_arguments_raise():
    assert LRP().baseline(torch.zeros(1, 3, 8, 8)) is None
    with pytest.raises(ValueError, match="alpha - beta = 1"):
        LRP(alpha=3.0, beta=1.0)
    with pytest.raises(ValueError, match="lrp.low must be below"):
        LRP(low=1.0, high=0.0)


def test_zplus_rule_is_its_closed_form_with_and_without_negative_inputs():
    """z+ = W+ x+ + b+ + W- x-, R_in = x+ W+^T (R / stab(z+)) + x- W-^T (R / stab(z+)); after a ReLU (x- = 0) the
    second term is skipped, which must not change the result."""
    from methods.lrp.rules import ZPlus, stabilize
    gen = torch.Generator().manual_seed(4)
    w, b, r = torch.randn(3, 5, generator=gen), torch.randn(3, generator=gen), torch.rand(4, 3, generator=gen)
    layer = lambda x, weight, bias: torch.nn.functional.linear(x, weight, bias)  # noqa: E731
    layer.weight, layer.bias = w, b
    for x in (torch.randn(4, 5, generator=gen), torch.rand(4, 5, generator=gen)):  # mixed signs; non-negative
        xp, xn, wp, wn = x.clamp(min=0), x.clamp(max=0), w.clamp(min=0), w.clamp(max=0)
        scaled = r / stabilize(xp @ wp.T + b.clamp(min=0) + xn @ wn.T, 1e-6)
        torch.testing.assert_close(ZPlus(1e-6).relevance(layer, x, r), xp * (scaled @ wp) + xn * (scaled @ wn))
