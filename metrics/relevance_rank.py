"""Relevance rank accuracy (Arras, Osman & Samek, "CLEVR-XAI", Information Fusion 2022).

Definition: with K = |M| the number of mask pixels, RRA = |top-K pixels of the map ∩ M| / K,
the top-K taken on the channel-pooled map (``pooling``, default sum over channels).
Ties at the K-th value are broken by a seeded random order that depends only on
(seed, sample id), so a constant map scores about the mask's area fraction.

``scores``: RRA in [0, 1]; higher is better; headline: mean. NaN where the mask is empty
or the map is not finite. Extras: ``mask_area`` (what a random map scores in expectation).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_choice, check_seed
from metrics._common import POOLINGS, check_maps, check_masks, pool_channels, sample_ids, uniform
from metrics.result import MetricResult, undefined


class RelevanceRank:
    """Relevance rank accuracy: the share of the mask among the map's top-K pixels, K the mask's size.

    ``scores`` in [0, 1]; higher is better; headline: mean; NaN where the mask is empty or the map is
    not finite. ``needs`` is ``("masks",)``: the dataset must provide exact foreground masks (``masks``
    in the context); pre-flight checks it.

    Args:
        pooling (str, optional): Channel pooling of the attributions: ``sum``, ``abs_sum``, ``max`` or
            ``abs_max``. Default: ``sum``.
        seed (int or None, optional): Tie-breaking at the K-th value; null takes the run's seed (the
            harness fills it in). Default: None.
    """

    needs: tuple[str, ...] = ("masks",)  # checked against the dataset in pre-flight
    def __init__(self, pooling: str = "sum", seed: int | None = None) -> None:
        self.pooling = check_choice("relevance_rank", "pooling", pooling, POOLINGS)
        self.seed = check_seed("relevance_rank", seed)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model in one call (for the sweep's cost estimate): none, it reads the maps and masks only."""
        return 0

    name = "relevance_rank"

    def top(self, flat: torch.Tensor, k: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """(N, D) bool: the k[i] largest values of each row of ``flat``, ties broken by the seeded order of (seed, id)."""
        n, d = flat.shape
        shuffle = uniform(self.seed, 3, ids, (d,)).argsort(1)
        order = shuffle.gather(1, flat.gather(1, shuffle).sort(dim=1, descending=True, stable=True).indices)
        top = torch.zeros(n, d, dtype=torch.bool, device=flat.device)
        return top.scatter_(1, order, torch.arange(d, device=flat.device).expand(n, -1) < k.view(-1, 1))

    def k(self, inside: torch.Tensor) -> torch.Tensor:
        """How many top pixels are compared with the mask: K = |M| (relevance rank accuracy)."""
        return inside.sum(1)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        flat = pool_channels(check_maps(self.name, inputs, attributions), self.pooling).flatten(1).double()
        inside = check_masks(self.name, context.get("masks"), inputs).flatten(1)
        n = flat.shape[0]
        k = self.k(inside)
        hits = (self.top(flat, k, sample_ids(n, context, inputs.device)) & inside).sum(1).double()
        empty, finite = inside.sum(1) == 0, torch.isfinite(flat).all(1)
        score = torch.where(~empty & finite, hits / k.clamp_min(1), torch.full_like(hits, math.nan))
        dropped = undefined(self.name, {"empty foreground mask": empty, "non-finite attributions": ~finite}, n)
        return MetricResult(scores=score.float().cpu(), higher_is_better=True, extras={"mask_area": inside.float().mean(1).cpu()},
                            dropped=dropped)
