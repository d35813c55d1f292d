"""Pointing game (Zhang et al., "Top-down neural attention by excitation backprop", ECCV 2016/IJCV 2018).

Definition: a sample is a hit if the maximum of the channel-pooled attribution map
lies inside the foreground mask (dilated by ``tolerance`` pixels; the original uses
15 px at ImageNet scale, default here 0). Ties: with several maximal pixels the sample
is a hit only if all of them lie inside (a constant map is not a hit unless the mask is
the whole image); ``hit_any`` logs the lenient reading.

``scores``: 1.0 hit, 0.0 miss, NaN where the mask is empty (undefined, not a hit) or the
map is not finite. Higher is better; headline: mean (the pointing accuracy).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from methods.validation import check_choice
from metrics._common import POOLINGS, check_maps, check_masks, pool_channels
from metrics.result import MetricResult, undefined


class PointingGame:
    """Pointing game: a hit if the attribution map's maximum lies inside the foreground mask.

    ``scores``: 1.0 hit, 0.0 miss (with several maximal pixels a hit only if all lie inside;
    ``hit_any`` logs the lenient reading), NaN for an empty mask or a non-finite map; higher is better;
    headline: mean (the pointing accuracy). ``needs`` is ``("masks",)``: the dataset must provide exact
    foreground masks (``masks`` in the context); pre-flight checks it.

    Args:
        pooling (str, optional): Channel pooling of the attributions: ``sum``, ``abs_sum``, ``max`` or
            ``abs_max``. Default: ``sum``.
        tolerance (int, optional): Pixels the mask is dilated by, an integer >= 0 (the original uses
            15 px at ImageNet scale). Default: 0.
    """

    needs: tuple[str, ...] = ("masks",)  # checked against the dataset in pre-flight
    def __init__(self, pooling: str = "sum", tolerance: int = 0) -> None:
        self.pooling = check_choice("pointing_game", "pooling", pooling, POOLINGS)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
            raise ValueError(f"pointing_game.tolerance must be an integer >= 0 (pixels); got {tolerance!r}")
        self.tolerance = tolerance

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model in one call (for the sweep's cost estimate): none, it reads the maps and masks only."""
        return 0

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        pooled = pool_channels(check_maps("pointing_game", inputs, attributions), self.pooling)
        masks = check_masks("pointing_game", context.get("masks"), inputs)
        if self.tolerance:
            t = self.tolerance
            masks = F.max_pool2d(masks.float().unsqueeze(1), 2 * t + 1, stride=1, padding=t).squeeze(1) > 0
        flat, inside = pooled.flatten(1), masks.flatten(1)
        at_max = flat == flat.amax(1, keepdim=True)
        hit = (at_max & ~inside).sum(1) == 0
        hit_any = (at_max & inside).any(1)
        defined = inside.any(1) & torch.isfinite(flat).all(1)
        nan = torch.full_like(hit, math.nan, dtype=torch.float32)
        dropped = undefined("pointing_game", {"empty foreground mask": ~inside.any(1), "non-finite attributions": ~torch.isfinite(flat).all(1)},
                            len(hit))
        return MetricResult(scores=torch.where(defined, hit.float(), nan).cpu(), higher_is_better=True,
                            extras={"hit_any": torch.where(defined, hit_any.float(), nan).cpu()}, dropped=dropped)
