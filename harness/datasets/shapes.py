"""The labelled shapes the synthetic datasets draw, and the label/group assignment they share.

Six shape classes (circle, square, triangle, cross, diamond, ring) drawn as exact
boolean masks at a seeded random radius (0.2-0.3 of the image) and position, fully
inside the image. ``labels_and_groups`` assigns each sample a label and a spurious
group (a background in :mod:`harness.datasets.spurious_shapes`, a patch shade in
:mod:`harness.datasets.decoy`): the test split is a balanced grid of every (label,
group) pair, in the train split the group equals the label with a given probability
(Sagawa et al., ICLR 2020). Batched in torch and drawn from the given generator.
"""
from __future__ import annotations

import torch

SHAPES = ("circle", "square", "triangle", "cross", "diamond", "ring")


def check_shape_knobs(name: str, n_classes: int, n_train: int, n_test: int, foreground_contrast: float, noise: float) -> None:
    """The checks the shape generators share (``spurious_shapes`` and ``decoy``), one line each."""
    if not 2 <= n_classes <= len(SHAPES):
        raise ValueError(f"{name}.n_classes must be between 2 and {len(SHAPES)}; got {n_classes}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"{name}.n_train and {name}.n_test must be positive; got {n_train} and {n_test}")
    if not 0.0 < foreground_contrast <= 1.0:
        raise ValueError(f"{name}.foreground_contrast must be in (0, 1]; got {foreground_contrast}")
    if noise < 0:
        raise ValueError(f"{name}.noise must be >= 0; got {noise}")


def labels_and_groups(split: str, n: int, k: int, correlation: float, gen: torch.Generator,
                      start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and spurious groups (background or shade) of a split: the test split is a balanced grid of every
    (label, group) pair (samples ``start .. start + n - 1`` of it); in the train split the group equals the label
    with probability ``correlation``, else it is another class's."""
    if split == "test":
        idx = torch.arange(start, start + n)
        return idx % k, (idx // k) % k
    labels = torch.randint(k, (n,), generator=gen)
    other = (labels + torch.randint(1, k, (n,), generator=gen)) % k
    return labels, torch.where(torch.rand(n, generator=gen) < correlation, labels, other)


def shape_masks(labels: torch.Tensor, size: int, gen: torch.Generator, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Masks (N, 1, S, S) of shape ``SHAPES[labels[i]]`` with a random radius (0.2-0.3 S) and position, inside the image.

    ``rows`` draws the random numbers of all N samples but draws the masks of those rows only (same bytes)."""
    n, s = len(labels), size
    radius = s * (0.2 + 0.1 * torch.rand(n, generator=gen))
    centre = radius.view(-1, 1) + torch.rand(n, 2, generator=gen) * (s - 2 * radius.view(-1, 1))
    if rows is not None:
        labels, radius, centre, n = labels[rows], radius[rows], centre[rows], len(rows)
    coords = torch.arange(s, dtype=torch.float32) + 0.5
    dy = (coords.view(1, -1, 1) - centre[:, 0].view(-1, 1, 1)) / radius.view(-1, 1, 1)
    dx = (coords.view(1, 1, -1) - centre[:, 1].view(-1, 1, 1)) / radius.view(-1, 1, 1)
    dist = torch.sqrt(dx**2 + dy**2)
    arm = 0.3
    drawn = torch.stack([
        dist <= 1,                                                          # circle
        torch.maximum(dx.abs(), dy.abs()) <= 0.8,                           # square
        (dy <= 0.7) & (dx.abs() <= (dy + 1) * 0.6),                         # triangle, apex up
        ((dx.abs() <= arm) & (dy.abs() <= 1)) | ((dy.abs() <= arm) & (dx.abs() <= 1)),  # cross
        dx.abs() + dy.abs() <= 1,                                           # diamond
        (dist <= 1) & (dist >= 0.55),                                       # ring
    ], dim=1)
    return drawn[torch.arange(n), labels].unsqueeze(1)
