"""Complexity (Bhatt, Weller & Moura, "Evaluating and aggregating feature-based model explanations",
IJCAI 2020).

Definition: the entropy of the fractional contribution distribution,
  P_i = |a_i| / sum_j |a_j|,   complexity = - sum_i P_i ln P_i   (0 ln 0 = 0),
over the features i: pixels with |a| pooled over channels (``pooling``: ``abs_sum``,
default, or ``abs_max``) or every channel value (``none``, as Quantus, which flattens).
Natural log. 0 when the mass sits in one feature, ln D for a uniform map over D features;
``normalised`` (extra) divides by ln D so that images of different sizes compare.

``scores``: the entropy per sample; lower is better (a simpler explanation); headline:
mean. NaN for an all-zero or non-finite map (counted in ``MetricResult.dropped``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_choice
from metrics._common import check_maps
from metrics.result import MetricResult, undefined

MAGNITUDE_POOLINGS = ("abs_sum", "abs_max", "none")


def magnitudes(name: str, inputs: torch.Tensor, attributions: torch.Tensor, pooling: str) -> torch.Tensor:
    """(N, D) float64 attribution magnitudes: per pixel (``abs_sum`` / ``abs_max`` over channels) or per value (``none``)."""
    maps = check_maps(name, inputs, attributions).double().abs()
    if pooling == "abs_sum":
        maps = maps.sum(1)
    elif pooling == "abs_max":
        maps = maps.amax(1)
    return maps.flatten(1)


class Complexity:
    """Complexity: the entropy of the attribution magnitudes' share per feature.

    ``scores`` in [0, ln D]; lower is better; headline: mean. ``needs`` is empty.

    Args:
        pooling (str, optional): The features: ``abs_sum`` or ``abs_max`` (of |a| over the channels, per
            pixel) or ``none`` (every channel value). Default: ``abs_sum``.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, pooling: str = "abs_sum") -> None:
        self.pooling = check_choice("complexity", "pooling", pooling, MAGNITUDE_POOLINGS)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): none, it reads the maps only."""
        return 0

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        v = magnitudes("complexity", inputs, attributions, self.pooling)
        total = v.sum(1, keepdim=True)
        p = v / total.clamp_min(1e-300)
        entropy = -torch.where(p > 0, p * p.clamp_min(1e-300).log(), torch.zeros_like(p)).sum(1)
        total = total.squeeze(1)
        finite, nonzero = torch.isfinite(total), total > 0
        entropy = torch.where(finite & nonzero, entropy, torch.full_like(entropy, math.nan))
        dropped = undefined("complexity", {"non-finite attributions": ~finite, "all-zero map": ~nonzero}, len(entropy))
        return MetricResult(scores=entropy.float().cpu(), higher_is_better=False,
                            extras={"normalised": (entropy / math.log(v.shape[1])).float().cpu()} if v.shape[1] > 1 else {},
                            dropped=dropped)
