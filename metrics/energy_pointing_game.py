"""Energy-based pointing game (Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu, "Score-CAM:
score-weighted visual explanations for convolutional neural networks", CVPR workshops 2020).

Definition: the share of the positive attribution energy that falls inside the object's
region, proportion = sum_{i in B} A_i^+ / sum_i A_i^+, with A the channel-summed map.
Wang et al. use the object's bounding box B (``region: box``, default): here the tightest
box around the foreground mask. ``region: mask`` uses the mask itself (then this equals
relevance mass accuracy). Unlike the pointing game it uses the whole map, not only its
maximum.

Known answers: a map inside the box scores 1, a uniform map scores the box's area
fraction (logged as the extra ``region_area``, the chance level).

``scores``: the proportion in [0, 1]; higher is better; headline: mean. NaN where the mask
is empty or the map has no positive mass (counted in ``MetricResult.dropped``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_choice
from metrics._common import check_maps, check_masks
from metrics.result import MetricResult, undefined


def bounding_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool: the tightest axis-aligned box around each mask (all False for an empty mask)."""
    rows, cols = masks.any(2), masks.any(1)                              # (N, H), (N, W)

    def span(v: torch.Tensor) -> torch.Tensor:
        idx = torch.arange(v.shape[1], device=v.device).expand_as(v)
        first = torch.where(v, idx, v.shape[1]).amin(1, keepdim=True)
        last = torch.where(v, idx, -1).amax(1, keepdim=True)
        return (idx >= first) & (idx <= last)

    return span(rows).unsqueeze(2) & span(cols).unsqueeze(1)


class EnergyPointingGame:
    """Energy-based pointing game (Score-CAM): the positive attribution energy's share inside the object's box.

    ``scores`` in [0, 1]; higher is better; headline: mean. ``needs`` is ``("masks",)``.

    Args:
        region (str, optional): ``box`` (the mask's bounding box, as Wang et al.) or ``mask``. Default: ``box``.
    """

    needs: tuple[str, ...] = ("masks",)

    def __init__(self, region: str = "box") -> None:
        self.region = check_choice("energy_pointing_game", "region", region, ("box", "mask"))

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): none, it reads the maps and masks only."""
        return 0

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        energy = check_maps("energy_pointing_game", inputs, attributions).double().sum(1).clamp_min(0)
        masks = check_masks("energy_pointing_game", context.get("masks"), inputs)
        region = bounding_boxes(masks) if self.region == "box" else masks
        total = energy.flatten(1).sum(1)
        share = (energy * region).flatten(1).sum(1) / total.clamp_min(1e-300)
        empty, finite = ~masks.flatten(1).any(1), torch.isfinite(total)
        bad = empty | ~finite | ~(total > 0)
        dropped = undefined("energy_pointing_game", {"empty foreground mask": empty, "non-finite attributions": ~finite,
                                                     "no positive attribution mass": ~(total > 0)}, len(share))
        return MetricResult(scores=torch.where(bad, torch.full_like(share, math.nan), share).float().cpu(), higher_is_better=True,
                            extras={"region_area": region.flatten(1).double().mean(1).float().cpu()}, dropped=dropped)
