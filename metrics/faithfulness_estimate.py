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

from methods.validation import check_choice
from metrics.randomization import pearson, spearman
from metrics.removal import SingleFeatureRemoval
from metrics.result import MetricResult, undefined


class FaithfulnessEstimate(SingleFeatureRemoval):
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

    name = "faithfulness_estimate"
    absolute = False   # compare signed relevances and drops (monotonicity correlation compares magnitudes)

    def __init__(self, granularity: str = "patch", patch_size: int = 4, correlation: str = "pearson", substrate: str = "mean",
                 pooling: str = "sum", score: str = "logit", target: str = "predicted", chunk_size: int | None = None,
                 seed: int | None = None) -> None:
        self.correlation = check_choice(self.name, "correlation", correlation, ("pearson", "spearman"))
        self.setup(self.name, granularity, patch_size, substrate, pooling, score, target, chunk_size, seed)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        finite, relevance, drops = self.effects(model, inputs, targets, attributions, context)
        if self.absolute:
            relevance, drops = relevance.abs(), drops.abs()
        corr = (pearson if self.correlation == "pearson" else spearman)(relevance, drops)
        corr = torch.where(finite, corr, torch.full_like(corr, math.nan))
        dropped = undefined(self.name, {"non-finite attributions": ~finite, "constant relevances or drops": corr.isnan()}, len(corr))
        return MetricResult(scores=corr.float().cpu(), higher_is_better=True, dropped=dropped)
