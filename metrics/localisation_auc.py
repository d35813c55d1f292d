"""Localisation AUC (Fawcett, "An introduction to ROC analysis", Pattern Recognition Letters 2006;
as Quantus's AUC localisation metric).

Definition: treat the channel-pooled map (``pooling``, default sum) as a score that
classifies each pixel as foreground (inside the mask M) or background and report the
area under its ROC curve,
  AUC = P(a_i > a_j) + P(a_i = a_j) / 2,  i in M, j not in M,
computed exactly from average ranks (Mann-Whitney U: (R_M - |M|(|M| + 1)/2) / (|M| |not M|)),
batched, in float64. Ties count one half, so a constant map scores 0.5.

Known answers: the mask itself scores 1, its complement 0, a constant map 0.5, a random
map 0.5 in expectation. Quantus computes the ROC curve with scikit-learn on the
flattened map; the value is the same (ties count half there too).

``scores``: AUC in [0, 1]; higher is better; headline: mean. NaN where the mask is empty
or covers the image, or the map is not finite (counted in ``MetricResult.dropped``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_choice
from metrics._common import POOLINGS, check_maps, check_masks, pool_channels
from metrics.randomization import average_ranks
from metrics.result import MetricResult, undefined


class LocalisationAUC:
    """Localisation AUC: the ROC AUC of the map as a per-pixel classifier of the foreground mask.

    ``scores`` in [0, 1], 0.5 for a constant or random map; higher is better; headline: mean.
    ``needs`` is ``("masks",)``.

    Args:
        pooling (str, optional): Channel pooling: ``sum``, ``abs_sum``, ``max`` or ``abs_max``. Default: ``sum``.
    """

    needs: tuple[str, ...] = ("masks",)

    def __init__(self, pooling: str = "sum") -> None:
        self.pooling = check_choice("localisation_auc", "pooling", pooling, POOLINGS)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): none, it reads the maps and masks only."""
        return 0

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        flat = pool_channels(check_maps("localisation_auc", inputs, attributions), self.pooling).flatten(1).double()
        inside = check_masks("localisation_auc", context.get("masks"), inputs).flatten(1)
        finite = torch.isfinite(flat).all(1)
        ranks = average_ranks(torch.nan_to_num(flat, nan=0.0)) + 1          # 1-based average ranks
        pos = inside.sum(1).double()
        neg = inside.shape[1] - pos
        u = (ranks * inside).sum(1) - pos * (pos + 1) / 2
        defined = finite & (pos > 0) & (neg > 0)
        auc = torch.where(defined, u / (pos * neg).clamp_min(1), torch.full_like(u, math.nan))
        dropped = undefined("localisation_auc", {"non-finite attributions": ~finite, "empty foreground mask": pos == 0,
                                                 "no background in the mask": neg == 0}, len(auc))
        return MetricResult(scores=auc.float().cpu(), higher_is_better=True, dropped=dropped)
