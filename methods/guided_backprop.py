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

from methods._hooks import rewritten_outputs, transformed_outputs
from methods.gradient import Gradient


class _RectifiedGradient(torch.autograd.Function):
    """Identity forward; backward rectifies the signal. Applied to a ReLU's output, the ReLU's own
    backward then adds the mask [x > 0]: together the guided rule, with no recomputation."""

    @staticmethod
    def forward(ctx, y):
        return y.view_as(y)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


class _DeconvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


def _relus(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.ReLU)]


class GuidedBackprop(Gradient):
    name = "guided_backprop"

    def _backward_rules(self, model: nn.Module):
        return transformed_outputs(_relus(model), _RectifiedGradient.apply)


class Deconvnet(Gradient):
    name = "deconvnet"

    def _backward_rules(self, model: nn.Module):
        # The ReLU's forward mask must not reach the backward pass: recompute the ReLU on its input.
        return rewritten_outputs(_relus(model), lambda module, args, output: _DeconvReLU.apply(args[0]))
