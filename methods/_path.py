"""Path-integrated gradients, shared by Integrated Gradients and its variants.

``path_gradients(model, inputs, targets, base, nodes, weights, batch_size)``
returns sum_k w_k * grad f_c(x' + a_k (x - x')), pushing all N * K interpolated
images through the model in chunks of ``batch_size`` (all at once when None).
"""
from __future__ import annotations

import torch
from torch import nn

from methods._autograd import target_gradients


def path_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    base: torch.Tensor,
    nodes: torch.Tensor,
    weights: torch.Tensor,
    batch_size: int | None,
) -> torch.Tensor:
    n, steps = inputs.shape[0], nodes.numel()
    delta = inputs - base
    nodes = nodes.to(inputs.device, inputs.dtype)
    weights = weights.to(inputs.device, inputs.dtype)
    total = torch.zeros_like(inputs)
    chunk = batch_size or n * steps
    # Flattened (step, sample) pairs: index i is sample i % n at step i // n.
    for start in range(0, n * steps, chunk):
        idx = torch.arange(start, min(start + chunk, n * steps), device=inputs.device)
        sample, step = idx % n, idx // n
        alpha = nodes[step].view(-1, 1, 1, 1)
        grads = target_gradients(model, base[sample] + alpha * delta[sample], targets[sample])
        total.index_add_(0, sample, grads * weights[step].view(-1, 1, 1, 1))
    return total
