"""The ``conservation`` experiment's finding, asserted on small seeded ReLU networks (no training).

Published finding (Sundararajan et al. 2017, completeness; Montavon et al. 2019, LRP conservation):
on bias-free ReLU networks gradient x input, Integrated Gradients from the zero baseline and LRP-0
sum to f(x) to float precision; with biases gradient x input and LRP-0 miss exactly the bias share
sum_k b_k df/db_k; LRP-epsilon's error grows with epsilon; IG is within 5 % at >= 50 steps.

The finding is about the architecture, not the training, so the networks here are seeded random
ones (He-initialised so activations keep their scale, biases drawn in [-0.5, 0.5]) at 16 px; the
experiment (``python -m harness experiment=conservation``) shows the same on the trained small CNN.
Margins were checked on seeds 0, 1 and 2 for both the SmallCNN and the MLP (float32), where the
measured worst cases were: bias-free relative error <= 1.2e-4 (LRP-0 on the CNN; <= 3e-5 for
gradient x input and IG); |delta + bias share| / |f(x)| <= 7e-6 for gradient x input and LRP-0;
IG median relative error at 50 steps with biases <= 1.3e-2; LRP-epsilon's median error strictly
increasing over epsilon in {0.01, 0.1, 1} on every bias-free model. The test runs seed 0.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import methods
from harness.models import MLP, SmallCNN
from metrics.conservation import Conservation

SEED = 0


def network(kind: str, bias: bool, seed: int = SEED) -> nn.Module:
    torch.manual_seed(seed)
    model = SmallCNN(3, 4, width=4, bias=bias) if kind == "cnn" else MLP(3, 4, 16, hidden=(32, 16), bias=bias)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    module.bias.uniform_(-0.5, 0.5)
    return model.eval()


def conservation(model: nn.Module, explainer, seed: int = SEED):
    torch.manual_seed(seed + 100)
    x = torch.randn(8, 3, 16, 16)
    targets = model(x).argmax(1)
    return Conservation()(model, x, targets, explainer(model, x, targets), explainer=explainer)


EXACT = {"gradient_x_input": methods.GradientXInput(), "lrp_0": methods.LRP(composite="epsilon", epsilon=0.0),
         "ig_8": methods.IntegratedGradients(n_steps=8), "ig_50": methods.IntegratedGradients(n_steps=50)}


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_bias_free_relu_networks_conserve_f_to_float_precision(kind):
    model = network(kind, bias=False)
    for name, explainer in EXACT.items():
        result = conservation(model, explainer)
        assert result.scores.max() < 1e-3, (kind, name, result.scores)   # measured <= 1.2e-4 (float32)


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_with_biases_the_gap_is_the_bias_share(kind):
    model = network(kind, bias=True)
    for name in ("gradient_x_input", "lrp_0"):
        result = conservation(model, EXACT[name])
        assert result.scores.median() > 1e-3, (kind, name)   # the biases do take a share (measured 1e-2 .. 1)
        leftover = result.extras["delta_without_bias"].abs() / result.extras["output"].abs()
        assert leftover.max() < 1e-4, (kind, name, leftover)  # measured <= 7e-6


def test_lrp_epsilon_error_grows_with_epsilon():
    model = network("cnn", bias=False)
    medians = [conservation(model, methods.LRP(composite="epsilon", epsilon=e)).scores.median().item() for e in (0.01, 0.1, 1.0)]
    assert medians[0] < medians[1] < medians[2], medians


def test_integrated_gradients_within_five_percent_at_fifty_steps_with_biases():
    model = network("cnn", bias=True)
    few = conservation(model, methods.IntegratedGradients(n_steps=4, method="riemann_trapezoid")).scores.median().item()
    many = conservation(model, EXACT["ig_50"]).scores.median().item()
    assert many <= 0.05, many
    assert many < few, (few, many)


def test_bias_switch_removes_every_bias_and_refuses_non_booleans():
    for model in (SmallCNN(bias=False), MLP(image_size=8, bias=False)):
        assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]
    assert sum(n.endswith("bias") for n, _ in SmallCNN().named_parameters()) == 6   # the default keeps them
    with pytest.raises(ValueError, match="model.network.bias must be true or false"):
        SmallCNN(bias="no")
