"""Modified-ReLU gradients: guided backpropagation and deconvnet.

- Guided backpropagation (Springenberg, Dosovitskiy, Brox & Riedmiller, ICLR-W
  2015): at every ReLU the backward signal is rectified *and* masked by the forward
  activation, g_in = [x > 0] * max(g_out, 0).
- Deconvnet (Zeiler & Fergus, ECCV 2014): the backward signal is only rectified,
  g_in = max(g_out, 0), independent of the forward activation.

Everything else is the plain gradient of the target logit, as Captum's
``GuidedBackprop`` / ``Deconvolution``; the result keeps the channel axis.

Every ReLU the forward pass runs is modified, whatever its form: ``nn.ReLU``
modules, ``F.relu``/``torch.relu``/``Tensor.relu`` calls inside a ``forward`` and
their in-place variants. A ``torch.overrides.TorchFunctionMode`` active during the
call swaps them for a ReLU with the modified backward (Captum's module hooks miss
the functional calls and silently return a plain gradient through them). The
mode ends with the call.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from methods.gradient import Gradient


class _Rectified(torch.autograd.Function):
    """Identity forward; backward rectifies the signal. Applied to a native ReLU's output, the ReLU's own
    backward then adds the mask [x > 0]: together the guided rule, with no extra saved tensor."""

    @staticmethod
    def forward(ctx, y):
        return y.view_as(y)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


def _guided_relu(x: torch.Tensor) -> torch.Tensor:
    return _Rectified.apply(torch.relu(x))


class _GuidedReLUInplace(torch.autograd.Function):
    """In place (the caller may ignore the returned tensor), so the rule is written out: [y > 0] * max(g, 0)."""

    @staticmethod
    def forward(ctx, x):
        x.clamp_(min=0)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return torch.ops.aten.threshold_backward(grad.clamp(min=0), y, 0)   # ReLU's own fused masking kernel


class _DeconvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


class _DeconvReLUInplace(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        x.clamp_(min=0)
        ctx.mark_dirty(x)
        return x

    backward = _DeconvReLU.backward


_OUT_OF_PLACE = {torch.relu, torch.Tensor.relu}
_IN_PLACE = {torch.relu_, torch.Tensor.relu_, F.relu_}


class _ReLUSwap(TorchFunctionMode):
    """Route every ReLU of the forward pass through ``relu`` / ``relu_`` (out of place / in place)."""

    def __init__(self, relu, relu_) -> None:
        super().__init__()
        self.relu, self.relu_ = relu, relu_

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.relu:
            inplace = kwargs.get("inplace", args[1] if len(args) > 1 else False)
            return (self.relu_ if inplace else self.relu)(args[0])
        if func in _OUT_OF_PLACE:
            return self.relu(args[0])
        if func in _IN_PLACE:
            return self.relu_(args[0])
        return func(*args, **kwargs)


class GuidedBackprop(Gradient):
    """Guided backpropagation: the gradient with every ReLU's backward signal rectified and masked.

    g_in = [x > 0] * max(g_out, 0) at every ReLU the forward pass runs (modules and functional calls),
    as Captum's ``GuidedBackprop``; shape (N, C, H, W). Arguments: those of
    :class:`methods.gradient.Gradient` (``batch_size``).
    """

    name = "guided_backprop"

    def _backward_rules(self, model: nn.Module) -> contextlib.AbstractContextManager:
        return _ReLUSwap(_guided_relu, _GuidedReLUInplace.apply)


class Deconvnet(Gradient):
    """Deconvnet: the gradient with every ReLU's backward signal rectified, ignoring the forward activation.

    g_in = max(g_out, 0) at every ReLU the forward pass runs (modules and functional calls), as Captum's
    ``Deconvolution``; shape (N, C, H, W). Arguments: those of :class:`methods.gradient.Gradient`
    (``batch_size``).
    """

    name = "deconvnet"

    def _backward_rules(self, model: nn.Module) -> contextlib.AbstractContextManager:
        return _ReLUSwap(_DeconvReLU.apply, _DeconvReLUInplace.apply)
