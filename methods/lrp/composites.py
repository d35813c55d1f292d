"""Composites: which rule each layer gets (named as zennit's composites).

A composite assigns a rule to dense (``nn.Linear``) and convolutional layers, and
optionally a special rule to the *first* layer (the conv/dense layer that reads
the model input). Average pooling always gets ``Norm``; activations, BatchNorm
(folded into the layer before it, or passed through) and residual adds are
handled by the explainer and the canonizers.

| name                        | first layer | conv            | dense   |
|-----------------------------|-------------|-----------------|---------|
| ``epsilon``                 | -           | Epsilon(e)      | Epsilon(e) |
| ``zplus``                   | -           | ZPlus           | ZPlus   |
| ``alpha_beta``              | -           | AlphaBeta(a, b) | AlphaBeta(a, b) |
| ``epsilon_plus``            | -           | ZPlus           | Epsilon(e) |
| ``epsilon_plus_flat``       | Flat        | ZPlus           | Epsilon(e) |
| ``epsilon_alpha2_beta1``    | -           | AlphaBeta(2, 1) | Epsilon(e) |
| ``epsilon_alpha2_beta1_flat`` | Flat      | AlphaBeta(2, 1) | Epsilon(e) |
| ``epsilon_gamma_box``       | ZBox(l, h) (conv) | Gamma(g)  | Epsilon(e) |
| ``epsilon_zbox``            | ZBox(l, h)  | Epsilon(e)      | Epsilon(e) |

``epsilon`` with e = 0 is LRP-0. The ``epsilon_*`` composites (except the last) are zennit's
``EpsilonPlus``, ``EpsilonPlusFlat``, ``EpsilonAlpha2Beta1``, ``EpsilonAlpha2Beta1Flat``
and ``EpsilonGammaBox``.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from methods.layer_types import CONVOLUTION
from methods.lrp.rules import AlphaBeta, Epsilon, Flat, Gamma, Rule, ZBox, ZPlus


@dataclass
class Composite:
    conv: Rule
    dense: Rule
    first: Rule | None = None
    first_conv_only: bool = False

    def rule(self, module: nn.Module, is_first: bool) -> Rule:
        is_conv = isinstance(module, CONVOLUTION)
        if is_first and self.first is not None and (is_conv or not self.first_conv_only):
            return self.first
        return self.conv if is_conv else self.dense


def make_composite(name: str, epsilon: float, gamma: float, alpha: float, beta: float, low, high, stabilizer: float) -> Composite:
    eps = Epsilon(epsilon)
    table = {
        "epsilon": lambda: Composite(eps, eps),
        "zplus": lambda: Composite(ZPlus(stabilizer), ZPlus(stabilizer)),
        "alpha_beta": lambda: Composite(AlphaBeta(alpha, beta, stabilizer), AlphaBeta(alpha, beta, stabilizer)),
        "epsilon_plus": lambda: Composite(ZPlus(stabilizer), eps),
        "epsilon_plus_flat": lambda: Composite(ZPlus(stabilizer), eps, Flat(stabilizer)),
        "epsilon_alpha2_beta1": lambda: Composite(AlphaBeta(2.0, 1.0, stabilizer), eps),
        "epsilon_alpha2_beta1_flat": lambda: Composite(AlphaBeta(2.0, 1.0, stabilizer), eps, Flat(stabilizer)),
        "epsilon_gamma_box": lambda: Composite(Gamma(gamma, stabilizer), eps, ZBox(low, high, stabilizer), first_conv_only=True),
        "epsilon_zbox": lambda: Composite(eps, eps, ZBox(low, high, stabilizer)),
    }
    return table[name]()


COMPOSITES = ("epsilon", "zplus", "alpha_beta", "epsilon_plus", "epsilon_plus_flat", "epsilon_alpha2_beta1",
              "epsilon_alpha2_beta1_flat", "epsilon_gamma_box", "epsilon_zbox")
