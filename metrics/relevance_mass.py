"""Relevance mass accuracy (Arras, Osman & Samek, "CLEVR-XAI", Information Fusion 2022).

Definition: RMA = R_within / R_total, the share of the attribution mass that lies inside
the ground-truth (foreground) mask, with R the channel-pooled map's positive part
(``variant: signed``, as Arras et al., who count positive relevance) or the channel sum
of |a| (``variant: absolute``). It equals 1 - BGF of the spurious-background ratio.

``scores``: RMA in [0, 1]; higher is better; headline: mean. NaN where the mask is empty
or the map has no (positive) mass. Extras: ``mask_area`` (fraction of the image), the
score a uniform map would get.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_choice
from metrics._common import check_maps, check_masks
from metrics.result import MetricResult, undefined


class RelevanceMass:
    """Relevance mass accuracy: the share of the attribution mass inside the foreground mask.

    ``scores`` in [0, 1]; higher is better; headline: mean; NaN where the mask is empty or the map has
    no (positive) mass. ``needs`` is ``("masks",)``: the dataset must provide exact foreground masks
    (``masks`` in the context); pre-flight checks it.

    Args:
        variant (str, optional): The mass counted: ``signed`` (positive part of the channel sum, as
            Arras et al.) or ``absolute`` (channel sum of |a|). Default: ``signed``.
    """

    needs: tuple[str, ...] = ("masks",)  # checked against the dataset in pre-flight
    def __init__(self, variant: str = "signed") -> None:
        self.variant = check_choice("relevance_mass", "variant", variant, ("signed", "absolute"))

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model in one call (for the sweep's cost estimate): none, it reads the maps and masks only."""
        return 0

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        maps = check_maps("relevance_mass", inputs, attributions).double()
        masks = check_masks("relevance_mass", context.get("masks"), inputs)
        pooled = maps.sum(1).clamp_min(0) if self.variant == "signed" else maps.abs().sum(1)
        total = pooled.flatten(1).sum(1)
        inside = (pooled * masks).flatten(1).sum(1)
        defined = masks.flatten(1).any(1) & (total > 0) & torch.isfinite(total)
        score = torch.where(defined, inside / total.clamp_min(1e-300), torch.full_like(total, math.nan))
        dropped = undefined("relevance_mass", {"empty foreground mask": ~masks.flatten(1).any(1), "non-finite attributions": ~torch.isfinite(total),
                                               "no positive attribution mass": ~(total > 0)}, len(score))
        return MetricResult(scores=score.float().cpu(), higher_is_better=True,
                            extras={"mask_area": masks.flatten(1).float().mean(1).cpu()}, dropped=dropped)
