"""Top-k intersection (Theiner, Mueller-Budack & Ewerth, "Interpretable semantic photo geolocation",
WACV 2022; as in Quantus's TopKIntersection).

Definition: TKI = |top-k pixels of the map ∩ M| / k, with M the foreground mask, the top
k = round(``k`` x H W) pixels of the channel-pooled map (``pooling``, default sum), ties
at the k-th value broken by the seeded order of :class:`metrics.relevance_rank.RelevanceRank`
(of which this is the fixed-k variant; relevance rank accuracy takes k = |M|).

Known answers: a map equal to the mask with |M| >= k scores 1; its complement scores 0;
a constant map scores the mask's area fraction in expectation. With |M| < k the best
possible score is |M| / k (logged as the extra ``best``).

``scores``: TKI in [0, 1]; higher is better; headline: mean. NaN where the mask is empty
or the map is not finite (counted in ``MetricResult.dropped``).
"""
from __future__ import annotations

import torch
from torch import nn

from metrics._common import check_masks
from metrics.relevance_rank import RelevanceRank
from metrics.result import MetricResult


class TopKIntersection(RelevanceRank):
    """Top-k intersection: the share of the map's k most relevant pixels that lie inside the foreground mask.

    ``scores`` in [0, 1]; higher is better; headline: mean. ``needs`` is ``("masks",)``.

    Args:
        k (float, optional): The number of top pixels as a fraction of the image, in (0, 1]. Default: 0.1.
        pooling (str, optional): Channel pooling: ``sum``, ``abs_sum``, ``max`` or ``abs_max``. Default: ``sum``.
        seed (int or None, optional): Tie-breaking order; null takes the run's seed. Default: None.
    """

    name = "top_k_intersection"

    def __init__(self, k: float = 0.1, pooling: str = "sum", seed: int | None = None) -> None:
        super().__init__(pooling=pooling, seed=seed)
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 < k <= 1:
            raise ValueError(f"top_k_intersection.k must be a fraction in (0, 1] of the pixels; got {k!r}")
        self.fraction = float(k)

    def k(self, inside: torch.Tensor) -> torch.Tensor:
        """k = round(fraction x H W), at least 1, the same for every image."""
        return torch.full((inside.shape[0],), max(1, round(self.fraction * inside.shape[1])), device=inside.device)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        res = super().__call__(model, inputs, targets, attributions, **context)
        masks = check_masks(self.name, context.get("masks"), inputs).flatten(1)
        k = max(1, round(self.fraction * masks.shape[1]))
        res.extras["best"] = (masks.sum(1).clamp(max=k).float() / k).cpu()
        return res
