"""Shared plumbing for the explainers: the batch contract, seeded generators, and input gradients.

``check_batch`` validates the (inputs, targets) pair of the explainer contract;
``target_gradients`` is the one place that computes d f_target / d x for a batch
(call it inside :func:`methods.model_state.frozen`); ``batched_gradients`` does it in chunks.
"""
from __future__ import annotations

import torch
from torch import nn


def check_batch(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Validate the (inputs, targets) pair of the explainer contract; return targets as a long tensor."""
    if inputs.dim() != 4:
        raise ValueError(f"explainer inputs must have shape (N, C, H, W); got {tuple(inputs.shape)}")
    targets = torch.as_tensor(targets, device=inputs.device).long().reshape(-1)
    if targets.numel() != inputs.shape[0]:
        raise ValueError(f"explainer needs one target per input; got {targets.numel()} targets for {inputs.shape[0]} inputs")
    return targets


def cpu_generator(seed: int | None) -> torch.Generator:
    """The seeded CPU generator behind every random draw (null seed -> 0); draws are moved to the device."""
    return torch.Generator(device="cpu").manual_seed(0 if seed is None else seed)


def target_gradients(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Gradient of each sample's target logit w.r.t. its input; call inside ``frozen``."""
    x = inputs.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        selected = logits.gather(1, targets.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(selected, x)
    return grad


def batched_gradients(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int | None) -> torch.Tensor:
    """``target_gradients`` over chunks of ``batch_size`` samples (all at once when None)."""
    size = batch_size or inputs.shape[0]
    return torch.cat([target_gradients(model, x, t) for x, t in zip(inputs.split(size), targets.split(size))])
