"""Saliency maps (Simonyan, Vedaldi & Zisserman, ICLR-W 2014).

Definition: A(x) = | d f_c(x) / d x |, the absolute gradient of the target logit
f_c with respect to every input value, kept per channel (shape (N, C, H, W)), as
Captum's ``Saliency(abs=True)``. Channel pooling is left to the metrics.
"""
from __future__ import annotations

import torch

from methods.gradient import Gradient


class Saliency(Gradient):
    """Saliency map: the absolute gradient of the target logit, A = | d f_c / d x |.

    As Captum's ``Saliency(abs=True)``; shape (N, C, H, W). Arguments: those of
    :class:`methods.gradient.Gradient` (``batch_size``).
    """

    name = "saliency"

    def transform(self, grads: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return grads.abs()
