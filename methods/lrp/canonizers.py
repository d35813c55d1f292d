"""Canonizers: make a model's graph fit layer-wise relevance propagation, without editing it.

LRP is not implementation-invariant (Montavon et al. 2019; Motzkus et al. 2022):
- ``merged_batchnorm``: an eval-mode BatchNorm that directly follows a conv/dense
  layer is folded into it: s = gamma / sqrt(var + eps), W' = s W,
  b' = s (b - mean) + beta; the BatchNorm then passes relevance unchanged. The
  model's parameters are never modified: the folded weights are computed on the fly
  for the rule, and the BatchNorm is recognised during the forward pass (its input
  is the very tensor the conv/dense layer produced).
- ``ResidualSplit``: a residual add ``a + b`` written in ``forward`` (``x + f(x)``,
  ``out += identity``) is invisible to module hooks, so the gradient would copy the
  full relevance to both summands and duplicate it. While active, this torch
  function mode routes every add of two same-shape tensors that are both on the
  relevance path through a function that splits R in proportion to the summands,
  R_a = a R / stab(a + b), R_b = b R / stab(a + b) (zennit's ``Norm`` on its
  ``Sum`` module), so relevance is neither duplicated nor lost. It works for any
  model (torchvision ResNets, custom residual nets), not only known block classes.
"""
from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

from methods.lrp.rules import stabilize


def merged_batchnorm(weight: torch.Tensor, bias: torch.Tensor | None, bn: torch.nn.modules.batchnorm._BatchNorm):
    """(W', b') of the conv/dense layer (weight, bias) followed by eval-mode ``bn``."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shape = (-1,) + (1,) * (weight.dim() - 1)
    merged_bias = -bn.running_mean if bias is None else bias - bn.running_mean
    merged_bias = merged_bias * scale
    if bn.bias is not None:
        merged_bias = merged_bias + bn.bias
    return weight * scale.view(shape), merged_bias


class _SplitSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, stabilizer):
        ctx.save_for_backward(a, b)
        ctx.stabilizer = stabilizer
        return a + b

    @staticmethod
    def backward(ctx, relevance):
        a, b = ctx.saved_tensors
        scaled = relevance / stabilize(a + b, ctx.stabilizer)
        return a * scaled, b * scaled, None


_ADDS = {torch.add, torch.Tensor.add, torch.Tensor.add_, torch.Tensor.__add__, torch.Tensor.__iadd__, torch.Tensor.__radd__}


class ResidualSplit(TorchFunctionMode):
    def __init__(self, stabilizer: float = 1e-6) -> None:
        super().__init__()
        self.stabilizer = stabilizer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (func in _ADDS and len(args) == 2 and not kwargs
                and all(torch.is_tensor(a) and a.requires_grad for a in args) and args[0].shape == args[1].shape):
            return _SplitSum.apply(args[0], args[1], self.stabilizer)
        return func(*args, **kwargs)
