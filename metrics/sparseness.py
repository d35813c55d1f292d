"""Sparseness: the Gini index of the attribution magnitudes (Chalasani et al., ICML 2020).

Definition: with v = |a| flattened (``pooling: none``, every channel value is a feature)
or pooled per pixel (``abs_sum`` / ``abs_max`` over channels), sorted ascending
v_(1) <= ... <= v_(n):  G = sum_i (2 i - n - 1) v_(i) / (n sum_i v_i),  in [0, 1 - 1/n].
0 for a uniform map, close to 1 when the mass sits in a single feature.

``scores``: G per sample; higher is better (sparser); headline: mean. NaN for an
all-zero or non-finite map.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_choice
from metrics._common import check_maps
from metrics.result import MetricResult, undefined


class Sparseness:
    """Sparseness: the Gini index of the attribution magnitudes.

    ``scores``: G in [0, 1 - 1/n] per sample, 0 for a uniform map; higher is better (sparser);
    headline: mean; NaN for an all-zero or non-finite map. ``needs`` is empty.

    Args:
        pooling (str, optional): The features: ``none`` (every channel value of |a|), ``abs_sum`` or
            ``abs_max`` (of |a| over the channels, per pixel). Default: ``none``.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, pooling: str = "none") -> None:
        self.pooling = check_choice("sparseness", "pooling", pooling, ("none", "abs_sum", "abs_max"))

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model in one call (for the sweep's cost estimate): none, it reads the maps and masks only."""
        return 0

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        maps = check_maps("sparseness", inputs, attributions).double().abs()
        if self.pooling == "abs_sum":
            maps = maps.sum(1)
        elif self.pooling == "abs_max":
            maps = maps.amax(1)
        v = maps.flatten(1).sort(1).values
        n = v.shape[1]
        i = torch.arange(1, n + 1, device=v.device, dtype=v.dtype)
        total = v.sum(1)
        gini = ((2 * i - n - 1) * v).sum(1) / (n * total.clamp_min(1e-300))
        defined = (total > 0) & torch.isfinite(total)
        dropped = undefined("sparseness", {"non-finite attributions": ~torch.isfinite(total), "all-zero map": ~(total > 0)}, len(gini))
        return MetricResult(scores=torch.where(defined, gini, torch.full_like(gini, math.nan)).float().cpu(), higher_is_better=True,
                            dropped=dropped)
