"""Faithfulness estimate (Alvarez-Melis & Jaakkola, "Towards robust interpretability with
self-explaining neural networks", NeurIPS 2018).

Definition: remove each feature i (a pixel or a square patch, all channels together)
alone, replacing it by the substrate, and correlate the features' relevances with the
drops they cause:
  rho = corr_i( a_i ,  f(x) - f(x_[x_i = substrate]) )
with a_i the channel-pooled map (``pooling``) summed over the feature, f the target score
(default: logit of the predicted class) and corr Pearson's (``correlation: pearson``, as
the paper) or Spearman's. One forward pass per feature and image (the engine is
:mod:`metrics.removal`): (H / patch_size)^2 per image; at 224 px use ``patch_size: 16``
(196 passes) or more.

Known answer: on a linear model with the ``mean`` substrate, a feature's drop is exactly
its share of x . w_c, so that map scores 1 and its negation -1.

``scores``: rho in [-1, 1]; higher is better; headline: mean. NaN where the relevances or
the drops are constant (counted in ``MetricResult.dropped``, with a warning).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_choice, check_int, check_seed
from metrics._common import POOLINGS, check_maps, pool_channels
from metrics.ablation import SCORES, TARGETS
from metrics.randomization import spearman
from metrics.removal import REMOVAL_SUBSTRATES, Removal, pearson
from metrics.result import MetricResult, undefined


class FaithfulnessEstimate:
    """Faithfulness estimate: correlation between each feature's relevance and the score drop when it alone is removed.

    ``scores`` in [-1, 1]; higher is better; headline: mean. ``needs`` is empty.

    Args:
        granularity (str, optional): The features removed one at a time: ``patch`` (squares of
            ``patch_size``) or ``pixel``. Default: ``patch``.
        patch_size (int, optional): Side of a square patch in pixels, >= 1. Default: 4.
        correlation (str, optional): ``pearson`` (as the paper) or ``spearman`` (ranks). Default: ``pearson``.
        substrate (str, optional): What a removed feature becomes: ``mean`` (zero in normalised space),
            ``zero`` (black), ``blur`` or ``noise``. Default: ``mean``.
        pooling (str, optional): Channel pooling of the map: ``sum``, ``abs_sum``, ``max`` or ``abs_max``.
            Default: ``sum``.
        score (str, optional): f: ``logit``, ``softmax`` or ``correct`` of the target class. Default: ``logit``.
        target (str, optional): The class scored: ``predicted``, ``label`` or ``explained``. Default: ``predicted``.
        chunk_size (int or None, optional): Perturbed images per forward pass, >= 1; null: automatic.
            Default: None.
        seed (int or None, optional): The ``noise`` substrate; null takes the run's seed. Default: None.
    """

    needs: tuple[str, ...] = ()
    name = "faithfulness_estimate"
    absolute = False   # compare signed relevances and drops (monotonicity correlation compares magnitudes)

    def __init__(self, granularity: str = "patch", patch_size: int = 4, correlation: str = "pearson", substrate: str = "mean",
                 pooling: str = "sum", score: str = "logit", target: str = "predicted", chunk_size: int | None = None,
                 seed: int | None = None) -> None:
        name = self.name
        self.granularity = check_choice(name, "granularity", granularity, ("patch", "pixel"))
        self.patch_size = check_int(name, "patch_size", patch_size)
        self.correlation = check_choice(name, "correlation", correlation, ("pearson", "spearman"))
        self.pooling = check_choice(name, "pooling", pooling, POOLINGS)
        check_choice(name, "substrate", substrate, REMOVAL_SUBSTRATES)
        check_choice(name, "score", score, SCORES)
        check_choice(name, "target", target, TARGETS)
        self.seed = check_seed(name, seed)
        self.removal = Removal(name, substrate, score, target, check_int(name, "chunk_size", chunk_size, allow_none=True), self.seed)
        self.removal.curve.granularity, self.removal.curve.patch_size = self.granularity, self.patch_size

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): the clean one and one per feature."""
        _, h, w = shape
        p = 1 if self.granularity == "pixel" else self.patch_size
        return 1 + math.ceil(h / p) * math.ceil(w / p)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        maps = check_maps(self.name, inputs, attributions)
        finite = torch.isfinite(maps).flatten(1).all(1)
        pooled = pool_channels(torch.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0), self.pooling)
        fmap, n_feat = self.removal.curve.feature_map(inputs, context)
        relevance, drops = self.removal.feature_effects(model, inputs, targets, pooled, context, fmap, n_feat)
        if self.absolute:
            relevance, drops = relevance.abs(), drops.abs()
        corr = (pearson if self.correlation == "pearson" else spearman)(relevance, drops)
        corr = torch.where(finite, corr, torch.full_like(corr, math.nan))
        dropped = undefined(self.name, {"non-finite attributions": ~finite, "constant relevances or drops": corr.isnan()}, len(corr))
        return MetricResult(scores=corr.float().cpu(), higher_is_better=True, dropped=dropped)
