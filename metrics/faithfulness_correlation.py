"""Faithfulness correlation (Bhatt, Weller & Moura, "Evaluating and aggregating feature-based model
explanations", IJCAI 2020).

Definition: for ``n_perturbations`` random subsets S of ``subset_size`` x H W pixels (all
channels of a pixel together), per sample
  mu_F = corr_S( sum_{i in S} a_i ,  f(x) - f(x_[x_S = substrate]) )
with corr the Pearson correlation over the subsets, a the channel-pooled map (``pooling``)
and f the target score (default: logit of the class predicted on the clean input;
Bhatt et al. use the model's output). Subsets are seeded per (seed, sample id, draw), so
they do not depend on the batch; the engine is :mod:`metrics.removal`.

Known answer: on a linear model f(x) = w_c . x with the ``mean`` substrate (zero in
normalised space) the drop is exactly sum_{i in S} w_ci x_i, so the map x . w_c scores 1
and -x . w_c scores -1.

``scores``: mu_F in [-1, 1]; higher is better; headline: mean. NaN (counted in
``MetricResult.dropped``, with a warning) where the subset sums or the drops are constant
(e.g. an all-zero map). Quantus's FaithfulnessCorrelation computes the same quantity
with its own defaults (subset of 224 values, 100 runs, the "black" baseline, which there
is the image minimum) and flattens channel values rather than pixels.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_choice, check_fraction, check_int
from metrics._common import POOLINGS
from metrics.randomization import pearson
from metrics.removal import Removal
from metrics.result import MetricResult, undefined


class FaithfulnessCorrelation:
    """Faithfulness correlation: Pearson correlation between a random subset's attribution and the drop when it is removed.

    ``scores`` in [-1, 1] per sample; higher is better; headline: mean. ``needs`` is empty.

    Args:
        subset_size (float, optional): Fraction of the pixels in each random subset, in (0, 1) (at least
            one pixel). Default: 0.1.
        n_perturbations (int, optional): Random subsets per sample, >= 2. Default: 64.
        substrate (str, optional): What removed pixels become: ``mean`` (zero in normalised space),
            ``zero`` (black), ``blur`` or ``noise`` (see :class:`~metrics.ablation.AblationCurve`).
            Default: ``mean``.
        pooling (str, optional): Channel pooling of the map: ``sum``, ``abs_sum``, ``max`` or
            ``abs_max``. Default: ``sum``.
        score (str, optional): f: ``logit``, ``softmax`` or ``correct`` of the target class.
            Default: ``logit``.
        target (str, optional): The class scored: ``predicted``, ``label`` or ``explained``.
            Default: ``predicted``.
        chunk_size (int or None, optional): Perturbed images per forward pass, >= 1; null: automatic.
            Default: None.
        seed (int or None, optional): The random subsets (and the ``noise`` substrate); null takes the
            run's seed. Default: None.
    """

    needs: tuple[str, ...] = ()
    name = "faithfulness_correlation"

    def __init__(self, subset_size: float = 0.1, n_perturbations: int = 64, substrate: str = "mean", pooling: str = "sum",
                 score: str = "logit", target: str = "predicted", chunk_size: int | None = None, seed: int | None = None) -> None:
        name = self.name
        self.subset_size = check_fraction(name, "subset_size", subset_size)
        self.n_perturbations = check_int(name, "n_perturbations", n_perturbations, minimum=2)
        self.pooling = check_choice(name, "pooling", pooling, POOLINGS)
        self.removal = Removal(name, substrate, score, target, chunk_size, seed)
        self.seed = self.removal.seed

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): the clean one and one per subset."""
        return 1 + self.n_perturbations

    def correlations(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, pooled: torch.Tensor,
                     fraction: float, context: dict, stream: int) -> torch.Tensor:
        """(N,) Pearson correlations over ``n_perturbations`` subsets of ``fraction`` of the pixels."""
        size = max(1, round(fraction * pooled[0].numel()))
        sums, drops = self.removal.random_subset_effects(model, inputs, targets, pooled, context, self.n_perturbations, size, stream)
        return pearson(sums, drops)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        finite, pooled = self.removal.masked_pooled(inputs, attributions, self.pooling)
        corr = self.correlations(model, inputs, targets, pooled, self.subset_size, context, stream=20)
        corr = torch.where(finite, corr, torch.full_like(corr, math.nan))
        dropped = undefined(self.name, {"non-finite attributions": ~finite, "constant subset sums or drops": corr.isnan()}, len(corr))
        return MetricResult(scores=corr.float().cpu(), higher_is_better=True, dropped=dropped)
