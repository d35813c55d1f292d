"""AttnLRP's rules for self-attention (Achtibat et al., "AttnLRP: Attention-Aware Layer-wise Relevance Propagation
for Transformers", ICML 2024), so that relevance reaches the queries and keys, not only the values.

One ``nn.MultiheadAttention`` self-attention call on tokens x (N, L, D), H heads of width d, is recomputed as
q, k, v = in_proj(x); S = q k^T; A = softmax(S / sqrt(d)); out = out_proj(A v), and each operation gets its rule:

- ``in_proj`` and ``out_proj``: the epsilon rule (Eq. 8 of the paper; the caller's ``linear``), their biases absorbing
  their share.
- The bilinear products S = q k^T and O = A v: the uniform rule with the epsilon rule (Proposition 3.3): each output
  entry's relevance goes half to each factor, then by the epsilon rule within it,
  R_a = a ⊙ [(R / stab(2 a b)) b^T], R_b = b ⊙ [a^T (R / stab(2 a b))], with stab(z) = z + epsilon sign(z)
  (sign(0) = +1). For epsilon = 0 it conserves: sum R_a + sum R_b = sum R.
- softmax (Proposition 3.1): the first-order Taylor expansion at the input itself (the "linearisation at x"). With
  z = S / sqrt(d) and s = softmax(z) over the keys, s_j = sum_i z_i ds_j/dz_i + b_j, where the bias term
  b_j = s_j (1 - z_j + sum_i z_i s_i) is not relevance of any input; distributing each R_j by the linear terms gives
  R_in_i = z_i (R_i - s_i sum_j R_j). The bias terms absorb the rest, sum_j R_j - sum_i R_in_i
  = sum_j R_j (1 - z_j + <z, s>) per query row: softmax is not conservative, even in a bias-free model.
  ``absorbed`` reports that amount per call and image, so Sum R = f(x) - Sum absorbed can be checked.
  The scaling by 1/sqrt(d) is a product with a constant, which passes relevance unchanged (the identity rule).

LayerNorm's rule (its standard deviation held constant, the identity rule on 1/std, and the epsilon rule on the
linear rest) is :class:`methods.lrp._LayerNorm`; activations pass relevance unchanged (the identity rule, Eq. 9).
These are the rules of the authors' reference implementation LXT (``lxt.explicit.functional``: ``linear_epsilon``,
``matmul``, ``softmax``, ``layer_norm``), against which ``tests/methods/test_attnlrp.py`` checks the maps, except
that our stabiliser keeps the sign of z (LXT adds +epsilon).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.lrp.rules import stabilize


class Slot:
    """What one attention call's backward pass leaves: ``relevance`` of its attention map A (N, H, L, L), the R^(A) of
    Chefer et al. 2021, and ``absorbed`` (N,), the relevance its softmax's bias terms took."""

    relevance: torch.Tensor | None = None
    absorbed: torch.Tensor | None = None


class _Softmax(torch.autograd.Function):
    """s = softmax(scale * scores) over the last dimension; backward: R_in = z ⊙ (R - s sum_j R_j), z = scale * scores."""

    @staticmethod
    def forward(ctx, scores, scale, slot):
        z = scores * scale
        s = torch.softmax(z, dim=-1)
        ctx.save_for_backward(z, s)
        ctx.slot = slot
        return s

    @staticmethod
    def backward(ctx, relevance):
        z, s = ctx.saved_tensors
        out = z * (relevance - s * relevance.sum(dim=-1, keepdim=True))
        if ctx.slot is not None:
            dims = tuple(range(1, relevance.dim()))
            ctx.slot.relevance = relevance.detach()
            ctx.slot.absorbed = (relevance.sum(dim=dims) - out.sum(dim=dims)).detach()
        return out, None, None


class _Bilinear(torch.autograd.Function):
    """out = a @ b; backward: the uniform rule, half of each entry's relevance to each factor, then the epsilon rule."""

    @staticmethod
    def forward(ctx, a, b, epsilon):
        out = a @ b
        ctx.save_for_backward(a, b, out)
        ctx.epsilon = epsilon
        return out

    @staticmethod
    def backward(ctx, relevance):
        a, b, out = ctx.saved_tensors
        scaled = relevance / stabilize(2 * out, ctx.epsilon)
        return a * (scaled @ b.transpose(-1, -2)), b * (a.transpose(-1, -2) @ scaled), None


def attention_rules(module: nn.MultiheadAttention, x: torch.Tensor, linear, epsilon: float, slot: Slot | None = None) -> torch.Tensor:
    """The output of plain batch-first self-attention ``module`` on x (N, L, D), computed with AttnLRP's rules on its
    relevance path; ``linear(x, weight, bias)`` is F.linear with the caller's epsilon rule, ``slot`` (if given) is filled
    by the backward pass."""
    n, length, dim = x.shape
    heads = module.num_heads
    split = lambda t: t.reshape(n, length, heads, dim // heads).transpose(1, 2)  # noqa: E731
    q, k, v = (split(t) for t in linear(x, module.in_proj_weight, module.in_proj_bias).chunk(3, dim=-1))
    scores = _Bilinear.apply(q, k.transpose(-1, -2), epsilon)
    attention = _Softmax.apply(scores, 1.0 / math.sqrt(dim // heads), slot)
    values = _Bilinear.apply(attention, v, epsilon)
    return linear(values.transpose(1, 2).reshape(n, length, dim), module.out_proj.weight, module.out_proj.bias)
