"""LRP rules: how one linear layer redistributes the relevance of its outputs to its inputs.

Notation: layer z = W x + b (conv or dense), R the relevance of the outputs,
x+ = max(x, 0), x- = min(x, 0), W+ / W- (and b+ / b-) the clamped parameters,
stab(z) = z + s * sign(z) with sign(0) = +1 (s the stabilizer, or epsilon).
Every rule returns R_in = sum_t m_t(x) * [W_t^T (R / stab(z_t))], computed with
autograd through the layer's own functional form, so it works for any conv
geometry. Definitions follow Montavon et al., "Layer-wise relevance propagation:
an overview" (2019), with zennit's conventions for which terms carry the bias:

- ``Epsilon(e)``: z = W x + b; R_in = x * W^T (R / (z + e sign z)). e = 0 is LRP-0
  (Bach et al. 2015); larger e absorbs more relevance (Sum R_in shrinks).
- ``ZPlus``: z+ = W+ x+ + b+ + W- x- (alpha = 1, beta = 0; Montavon et al. 2017).
- ``AlphaBeta(a, b)``: a * positive part - b * negative part (Bach et al. 2015), each
  part normalised by its own sum: z+ as ZPlus, z- = W- x+ + b- + W+ x-.
- ``Gamma(g)``: W -> W + g W+ for positive outputs (and W + g W- for the
  x- / negative-output terms), normalised separately for z > 0 and z < 0.
- ``ZBox(low, high)``: z = W x + b - (W+ l + b+) - (W- h + b-) for inputs in
  [low, high] (the z^B rule for pixels; Montavon et al. 2017).
- ``Flat``: every input in the receptive field gets an equal share (W = 1, x = 1, no bias).
- ``WSquare``: shares proportional to W^2 (x = 1, no bias).
- ``Norm``: z = layer(x) for parameter-free linear layers (average pooling), only stabilised.
"""
from __future__ import annotations

import torch


def stabilize(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    out = torch.where(z >= 0, z + epsilon, z - epsilon)  # z + e sign(z), sign(0) = +1
    return out.masked_fill_(out == 0, 1.0)  # e = 0 and z = 0: nothing to divide


def _pos(t):
    return None if t is None else t.clamp(min=0)


def _neg(t):
    return None if t is None else t.clamp(max=0)


class Rule:
    """Base: ``relevance(layer, x, R)``; ``layer(x, weight, bias)`` is the layer's functional form."""

    def relevance(self, layer, x: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def _shares(layer, terms, relevance, stabilizer):
        """Normalised shares of one group of terms (input, weight, bias): [m_t * W_t^T (R / stab(sum_t z_t))].

        A term whose input is all zeros and has no bias (x- after a ReLU: the W- x- term of z+) adds nothing to
        sum_t z_t and gets a zero share, so its layer pass and its gradient are skipped (exactly the same result)."""
        live = [k for k, (x, _, b) in enumerate(terms) if b is not None or bool(x.detach().ne(0).any())] or [0]
        inputs = [terms[k][0].detach().requires_grad_(True) for k in live]
        outputs = [layer(i, terms[k][1], terms[k][2]) for i, k in zip(inputs, live)]
        scaled = relevance / stabilize(sum(o.detach() for o in outputs), stabilizer)
        grads = torch.autograd.grad(outputs, inputs, [scaled] * len(outputs))
        shares = [torch.zeros_like(t[0]) for t in terms]
        for k, i, g in zip(live, inputs, grads):
            shares[k] = i.detach() * g
        return shares


class Epsilon(Rule):
    def __init__(self, epsilon: float = 1e-6) -> None:
        self.epsilon = epsilon

    def relevance(self, layer, x, relevance):
        (share,) = self._shares(layer, [(x, layer.weight, layer.bias)], relevance, self.epsilon)
        return share


class Norm(Epsilon):
    """Epsilon with the stabiliser only, for parameter-free layers (the layer's own forward)."""


class ZPlus(Rule):
    def __init__(self, stabilizer: float = 1e-6) -> None:
        self.stabilizer = stabilizer

    def relevance(self, layer, x, relevance):
        w, b = layer.weight, layer.bias
        return sum(self._shares(layer, [(x.clamp(min=0), _pos(w), _pos(b)), (x.clamp(max=0), _neg(w), None)], relevance, self.stabilizer))


class AlphaBeta(Rule):
    def __init__(self, alpha: float = 2.0, beta: float = 1.0, stabilizer: float = 1e-6) -> None:
        self.alpha, self.beta, self.stabilizer = alpha, beta, stabilizer

    def relevance(self, layer, x, relevance):
        w, b = layer.weight, layer.bias
        xp, xn = x.clamp(min=0), x.clamp(max=0)
        positive = sum(self._shares(layer, [(xp, _pos(w), _pos(b)), (xn, _neg(w), None)], relevance, self.stabilizer))
        negative = sum(self._shares(layer, [(xp, _neg(w), _neg(b)), (xn, _pos(w), None)], relevance, self.stabilizer))
        return self.alpha * positive - self.beta * negative


class Gamma(Rule):
    def __init__(self, gamma: float = 0.25, stabilizer: float = 1e-6) -> None:
        self.gamma, self.stabilizer = gamma, stabilizer

    def relevance(self, layer, x, relevance):
        w, b, g = layer.weight, layer.bias, self.gamma
        lift = lambda t, part: None if t is None else t + g * part(t)  # noqa: E731
        xp, xn = x.clamp(min=0), x.clamp(max=0)
        with torch.no_grad():
            z = layer(x, w, b)
        up = relevance * (z > 0)
        down = relevance * (z < 0)
        positive = self._shares(layer, [(xp, lift(w, _pos), lift(b, _pos)), (xn, lift(w, _neg), None)], up, self.stabilizer)
        negative = self._shares(layer, [(xp, lift(w, _neg), lift(b, _neg)), (xn, lift(w, _pos), None)], down, self.stabilizer)
        return sum(positive) + sum(negative)


class ZBox(Rule):
    def __init__(self, low: float | torch.Tensor = -3.0, high: float | torch.Tensor = 3.0, stabilizer: float = 1e-6) -> None:
        self.low, self.high, self.stabilizer = low, high, stabilizer

    def relevance(self, layer, x, relevance):
        w, b = layer.weight, layer.bias
        low = torch.as_tensor(self.low, dtype=x.dtype, device=x.device).expand_as(x)
        high = torch.as_tensor(self.high, dtype=x.dtype, device=x.device).expand_as(x)
        inputs = [t.detach().requires_grad_(True) for t in (x, low, high)]
        outputs = [layer(inputs[0], w, b), layer(inputs[1], _pos(w), _pos(b)), layer(inputs[2], _neg(w), _neg(b))]
        z = outputs[0].detach() - outputs[1].detach() - outputs[2].detach()
        scaled = relevance / stabilize(z, self.stabilizer)
        grads = torch.autograd.grad(outputs, inputs, [scaled] * 3)
        return inputs[0].detach() * grads[0] - inputs[1].detach() * grads[1] - inputs[2].detach() * grads[2]


class Flat(Rule):
    def __init__(self, stabilizer: float = 1e-6) -> None:
        self.stabilizer = stabilizer

    def weight(self, w):
        return torch.ones_like(w)

    def relevance(self, layer, x, relevance):
        (share,) = self._shares(layer, [(torch.ones_like(x), self.weight(layer.weight), None)], relevance, self.stabilizer)
        return share


class WSquare(Flat):
    def weight(self, w):
        return w.square()
