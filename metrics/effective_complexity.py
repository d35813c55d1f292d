"""Effective complexity (Nguyen & Martinez, "On quantitative aspects of model interpretability",
arXiv 2007.07584, 2020).

Definition: the number of features whose attribution magnitude exceeds a threshold,
  EC = |{ i : |a_i| > eps }|,
with |a| pooled per pixel (``pooling``, default ``abs_sum``) or per channel value
(``none``). The threshold is relative, eps = ``eps`` x max_i |a_i| (Quantus normalises
the map by its maximum before comparing with an absolute eps, which is the same), so the
count does not depend on the map's scale. ``scores`` is the count as a fraction of the D
features (comparable across image sizes); the extra ``count`` is EC itself.

Known answers: a map with m non-zero equal values scores m / D; a uniform map scores 1.

``scores``: EC / D in [0, 1]; lower is better (fewer features needed); headline: mean.
NaN for an all-zero or non-finite map (counted in ``MetricResult.dropped``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_choice
from metrics.complexity import MAGNITUDE_POOLINGS, magnitudes
from metrics.result import MetricResult, undefined


class EffectiveComplexity:
    """Effective complexity: the fraction of features whose |attribution| exceeds eps x the largest one.

    ``scores`` in [0, 1]; lower is better; headline: mean. ``needs`` is empty.

    Args:
        eps (float, optional): The threshold relative to the map's largest magnitude, in [0, 1).
            Default: 1e-05.
        pooling (str, optional): The features: ``abs_sum``, ``abs_max`` (per pixel) or ``none`` (every
            channel value). Default: ``abs_sum``.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, eps: float = 1e-5, pooling: str = "abs_sum") -> None:
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < 1:
            raise ValueError(f"effective_complexity.eps must be in [0, 1) (relative to the largest |a|); got {eps!r}")
        self.eps = float(eps)
        self.pooling = check_choice("effective_complexity", "pooling", pooling, MAGNITUDE_POOLINGS)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): none, it reads the maps only."""
        return 0

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        v = magnitudes("effective_complexity", inputs, attributions, self.pooling)
        top = v.amax(1, keepdim=True)
        count = (v > self.eps * top).sum(1).double()
        top = top.squeeze(1)
        finite, nonzero = torch.isfinite(v).all(1), top > 0
        nan = torch.full_like(count, math.nan)
        count = torch.where(finite & nonzero, count, nan)
        dropped = undefined("effective_complexity", {"non-finite attributions": ~finite, "all-zero map": ~nonzero}, len(count))
        return MetricResult(scores=(count / v.shape[1]).float().cpu(), higher_is_better=False,
                            extras={"count": count.float().cpu()}, dropped=dropped)
