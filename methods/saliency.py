"""Saliency maps (Simonyan, Vedaldi & Zisserman, ICLR-W 2014).

Definition: A(x) = | d f_c(x) / d x |, the absolute gradient of the target logit
f_c with respect to every input value, kept per channel (shape (N, C, H, W)), as
Captum's ``Saliency(abs=True)``. Channel pooling is left to the metrics.
"""
from __future__ import annotations

import torch
from torch import nn

from methods._autograd import check_batch, frozen, target_gradients


class Saliency:
    def __init__(self, batch_size: int | None = None) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"saliency.batch_size must be a positive integer or null; got {batch_size}")
        self.batch_size = batch_size

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        size = self.batch_size or inputs.shape[0]
        with frozen(model):
            grads = [target_gradients(model, x, t) for x, t in zip(inputs.split(size), targets.split(size))]
        return torch.cat(grads).abs()
