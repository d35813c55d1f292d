"""Which test images a run explains: a class-stratified draw from the run's seed, or the first ``n``.

A folder read in sorted order lists all of one class first, so "the first n test images"
can be a single class. :func:`evaluation_indices` with ``how="stratified"`` (the default
``eval.sample``) instead draws the samples so that every class is represented as equally
as its size allows: each class's images are put in a seeded random order, and the draw
takes the first image of every class, then the second, and so on (classes with fewer
images run out first), until ``n`` are drawn. The indices come back sorted, and the
runner logs them (``scores.csv`` column ``index``, ``eval_indices.json``), so a run's
samples can be found again in the split. ``how="first"`` takes indices ``0..n-1``.
"""
from __future__ import annotations

import torch

SAMPLING = ("stratified", "first")


def evaluation_indices(labels: torch.Tensor, n: int, seed: int = 0, how: str = "stratified") -> torch.Tensor:
    """Sorted indices of ``min(n, len(labels))`` samples: class-stratified from ``seed``, or the first ``n``."""
    if how not in SAMPLING:
        raise ValueError(f"eval.sample must be one of {', '.join(SAMPLING)}; got {how!r}")
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    total = labels.numel()
    n = min(int(n), total)
    if how == "first" or total == 0:
        return torch.arange(n)
    order = torch.randperm(total, generator=torch.Generator().manual_seed(int(seed)))
    shuffled = labels[order]
    by_class = shuffled.sort(stable=True)                        # seeded order within each class
    starts = torch.searchsorted(by_class.values, by_class.values, right=False)
    rank = torch.empty(total, dtype=torch.long)
    rank[by_class.indices] = torch.arange(total) - starts        # position of each sample within its class
    classes = int(labels.max()) + 1
    pick = (rank * classes + shuffled).argsort()[:n]             # round-robin over classes, lowest rank first
    return order[pick].sort().values
