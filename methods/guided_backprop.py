"""Modified-ReLU gradients: guided backpropagation and deconvnet.

- Guided backpropagation (Springenberg, Dosovitskiy, Brox & Riedmiller, ICLR-W
  2015): at every ReLU the backward signal is rectified *and* masked by the forward
  activation, g_in = [x > 0] * max(g_out, 0).
- Deconvnet (Zeiler & Fergus, ECCV 2014): the backward signal is only rectified,
  g_in = max(g_out, 0), independent of the forward activation.

Everything else is the plain gradient of the target logit, as Captum's
``GuidedBackprop`` / ``Deconvolution``; the result keeps the channel axis. Only
``nn.ReLU`` modules are modified (a functional ``F.relu`` inside ``forward`` is
invisible to hooks, as it is to Captum); hooks are removed when the call ends.
"""
from __future__ import annotations

import torch
from torch import nn

from methods._hooks import rewritten_outputs
from methods.gradient import Gradient


class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0)


class _DeconvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


class GuidedBackprop(Gradient):
    name = "guided_backprop"
    _relu = _GuidedReLU

    def _backward_rules(self, model: nn.Module):
        relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        return rewritten_outputs(relus, lambda module, args, output: self._relu.apply(args[0]))


class Deconvnet(GuidedBackprop):
    name = "deconvnet"
    _relu = _DeconvReLU
