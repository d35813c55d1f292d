"""Sufficiency (Dasgupta, Frost & Moshkovitz, "Framework for evaluating faithfulness of local
explanations", ICML 2022; as Quantus's Sufficiency).

Definition: an explanation is sufficient if inputs with similar explanations get the same
prediction. For sample i let N(i) be the other explained samples j whose maps are within
``threshold`` of i's in cosine distance 1 - <a_i, a_j> / (||a_i|| ||a_j||) (channel-pooled,
flattened; scale-free, unlike the Euclidean distance Quantus uses on raw maps). Then
  sufficiency_i = |{ j in N(i) : pred(j) = pred(i) }| / |N(i)|.
It is a property of the set of explained samples, so it depends on which samples are
evaluated together: the harness passes all explained images in one call; computed on the
whole batch at once (an N x N distance matrix, memory N^2).

Known answers: identical maps for all samples of one predicted class and orthogonal maps
across classes give 1; identical maps for all samples give the share of the majority
agreement (the fraction of others with the same prediction).

``scores``: the fraction in [0, 1]; higher is better; headline: mean. NaN where a sample
has no neighbour within the threshold, or an all-zero map (counted in
``MetricResult.dropped``). Extra ``neighbours``: |N(i)|.

Quantus 0.6's Sufficiency with ``distance_func="cosine"`` gives the same values, once its
``cdist(..., V=None)`` call is made to work: it always passes ``V``, which only its default
``seuclidean`` accepts, so every other distance raises. It scores a sample without
neighbours 0 (the worst score, as if every neighbour disagreed), where ours is NaN and
counted (tests/metrics/test_quantus_reference.py).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_choice
from metrics._common import POOLINGS, check_maps, pool_channels, predictions, untouched
from metrics.result import MetricResult, undefined


class Sufficiency:
    """Sufficiency: among the samples whose maps are close to this one's, the share with the same prediction.

    Higher is better; headline: mean. ``needs`` is empty.

    Args:
        threshold (float, optional): Largest cosine distance of a neighbour, in [0, 2]. Default: 0.3.
        pooling (str, optional): Channel pooling: ``sum``, ``abs_sum``, ``max`` or ``abs_max``. Default: ``sum``.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, threshold: float = 0.3, pooling: str = "sum") -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 2:
            raise ValueError(f"sufficiency.threshold must be a cosine distance in [0, 2]; got {threshold!r}")
        self.threshold = float(threshold)
        self.pooling = check_choice("sufficiency", "pooling", pooling, POOLINGS)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one, the prediction."""
        return 1

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        flat = pool_channels(check_maps("sufficiency", inputs, attributions), self.pooling).flatten(1).double()
        n = flat.shape[0]
        norm = flat.norm(dim=1)
        usable = torch.isfinite(norm) & (norm > 0)
        unit = torch.where(usable.view(-1, 1), flat / norm.clamp_min(1e-300).view(-1, 1), torch.zeros_like(flat))
        distance = 1 - unit @ unit.T
        with untouched(model):
            pred = predictions(model, inputs.detach())
        near = (distance <= self.threshold + 1e-12) & usable.view(1, -1) & usable.view(-1, 1)
        near.fill_diagonal_(False)
        same = near & (pred.view(-1, 1) == pred.view(1, -1))
        count = near.sum(1).double()
        score = torch.where(usable & (count > 0), same.sum(1).double() / count.clamp_min(1), torch.full_like(count, math.nan))
        dropped = undefined("sufficiency", {"all-zero or non-finite map": ~usable, "no neighbour within the threshold": count == 0}, n)
        return MetricResult(scores=score.float().cpu(), higher_is_better=True, extras={"neighbours": count.float().cpu()}, dropped=dropped)
