"""Plain-gradient attributions (the "gradient family").

- ``Gradient``: A = d f_c(x) / d x, the signed gradient of the target logit f_c
  (Baehrens et al., JMLR 2010; Simonyan, Vedaldi & Zisserman, ICLR-W 2014).
- ``Sensitivity``: A = (d f_c / d x)^2, sensitivity analysis (Zurada et al. 1994;
  Montavon, Samek & Müller, DSP 2018).
- ``GradientXInput``: A = x * d f_c / d x, the simple Taylor decomposition at the
  root point 0 (Shrikumar et al. 2016). Its reference point is exposed as
  ``baseline(inputs) = 0``; on bias-free ReLU networks sum(A) = f_c(x) exactly.

``Saliency`` (|gradient|) lives in ``methods.saliency``. All keep the channel axis
(shape (N, C, H, W)) as Captum does; channel pooling is left to the metrics.
Images go through the model in chunks of ``batch_size`` (all at once when null).
Subclasses change only ``transform``; guided backprop and deconvnet change the
backward pass through ``_backward_rules``.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from methods._autograd import batched_gradients, check_batch
from methods.model_state import frozen
from methods.validation import check_int


class Gradient:
    """Signed gradient of the target logit with respect to the input, A = d f_c / d x.

    The plain input gradient, kept per channel: the map has the inputs' shape (N, C, H, W). The subclasses
    :class:`~methods.saliency.Saliency`, :class:`Sensitivity`, :class:`GradientXInput`,
    :class:`~methods.guided_backprop.GuidedBackprop` and :class:`~methods.guided_backprop.Deconvnet`
    change only how the gradient is transformed or propagated back, and take exactly these arguments.

    Args:
        batch_size (int or None, optional): Images per forward and backward pass (bounds memory), an
            integer >= 1; None passes the whole batch at once. Default: None.
    """

    name = "gradient"

    def __init__(self, batch_size: int | None = None) -> None:
        check_int(self.name, "batch_size", batch_size, allow_none=True)
        self.batch_size = batch_size

    def transform(self, grads: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return grads

    def _backward_rules(self, model: nn.Module) -> contextlib.AbstractContextManager:
        """Context that modifies the backward pass (none for the plain gradient)."""
        return contextlib.nullcontext()

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one forward and backward pass."""
        return 1

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        with frozen(model), self._backward_rules(model):
            grads = batched_gradients(model, inputs, targets, self.batch_size)
        return self.transform(grads, inputs)


class Sensitivity(Gradient):
    """Sensitivity analysis: the squared gradient of the target logit, A = (d f_c / d x)^2.

    Shape (N, C, H, W). Arguments: those of :class:`Gradient` (``batch_size``).
    """

    name = "sensitivity"

    def transform(self, grads: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return grads.square()


class GradientXInput(Gradient):
    """Gradient x input, A = x * d f_c / d x: the simple Taylor decomposition at the root point 0.

    Shape (N, C, H, W). ``baseline(inputs)`` returns the root point (zeros), so the conservation metric
    compares sum(A) with f_c(x) - f_c(0). Arguments: those of :class:`Gradient` (``batch_size``).
    """

    name = "gradient_x_input"

    def transform(self, grads: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return grads * inputs

    def baseline(self, inputs: torch.Tensor) -> torch.Tensor:
        """The Taylor root point: zeros (sum(A) = f(x) - f(0) on bias-free ReLU nets)."""
        return torch.zeros_like(inputs)
