"""Batched model evaluation on masked inputs, shared by occlusion, KernelSHAP, LIME and RISE.

A perturbation method asks for the target score of P masked versions of each of N
images, x~ = m * x + (1 - m) * x' (m in [0, 1], x' the baseline). Masks are made
on demand by ``mask_fn(image_idx, mask_idx) -> (B, 1 or C, H, W)`` for a chunk of
(image, mask) pairs, so neither the N * P perturbed images nor all masks need to be
in memory at once: the pairs go through the model ``batch_size`` at a time.

The score is the target logit (``score: logit``) or its softmax probability
(``score: probability``).

``weighted_mask_sum`` sums masks shared by all images (occlusion's windows); ``masked_scores(...,
weighted_sum=True)`` sums masks drawn per image (RISE's, seeded per sample) in the same pass.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

SCORES = ("logit", "probability")
MaskFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_score(owner: str, score: str) -> None:
    if score not in SCORES:
        raise ValueError(f"{owner}.score must be one of {', '.join(SCORES)}; got {score!r}")


@torch.no_grad()
def target_scores(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, score: str = "logit") -> torch.Tensor:
    out = model(inputs)
    if score == "probability":
        out = out.softmax(dim=1)
    return out.gather(1, targets.view(-1, 1)).squeeze(1)


@torch.no_grad()
def masked_scores(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    base: torch.Tensor,
    n_masks: int,
    mask_fn: MaskFn,
    batch_size: int | None,
    score: str = "logit",
    weighted_sum: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Scores (N, P) of every image under every mask; call inside ``frozen``.

    With ``weighted_sum``, also sum_p score[n, p] * mask_{n, p} (N, 1, H, W), from the same masks (each made once).
    """
    n = inputs.shape[0]
    total = n * n_masks
    scores = inputs.new_empty(total)
    sums = inputs.new_zeros((n, 1, *inputs.shape[-2:])) if weighted_sum else None
    chunk = batch_size or total
    # Flattened (image, mask) pairs: index i is image i // P with mask i % P.
    for start in range(0, total, chunk):
        idx = torch.arange(start, min(start + chunk, total), device=inputs.device)
        image, mask = idx // n_masks, idx % n_masks
        m = mask_fn(image, mask).to(inputs.dtype)
        x = base[image] + m * (inputs[image] - base[image])
        part = target_scores(model, x, targets[image], score)
        scores[start:start + idx.numel()] = part
        if sums is not None:
            sums.index_add_(0, image, part.view(-1, 1, 1, 1) * m[:, :1])
    return scores.view(n, n_masks) if sums is None else (scores.view(n, n_masks), sums)


def weighted_mask_sum(weights: torch.Tensor, mask_fn: MaskFn, chunk: int) -> torch.Tensor:
    """sum_p weights[n, p] * mask_p for masks shared by all images; (N, 1, H, W)."""
    n, p = weights.shape
    total = None
    for start in range(0, p, chunk):
        mask = torch.arange(start, min(start + chunk, p), device=weights.device)
        masks = mask_fn(torch.zeros_like(mask), mask)[:, :1]  # (B, 1, H, W)
        part = torch.einsum("nb,bchw->nchw", weights[:, start:start + mask.numel()], masks.to(weights.dtype))
        total = part if total is None else total + part
    return total
