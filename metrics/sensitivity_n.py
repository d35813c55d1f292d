"""Sensitivity-N (Ancona, Ceolini, Oztireli & Gross, "Towards better understanding of gradient-based
attribution methods for deep neural networks", ICLR 2018).

Definition: an attribution map is Sensitivity-N if, for every subset S of N features,
sum_{i in S} a_i = f(x) - f(x_[x_S = substrate]). Measured as in the paper: for each
subset size N (``fractions`` of the H W pixels) the Pearson correlation, over
``n_perturbations`` random subsets, between the subset's attribution sum and the drop of
the target score; the per-sample curve of correlations against N is ``curves``
(``curve_x`` = the fractions) and ``scores`` is its mean over the sizes. Each size is
faithfulness correlation (:mod:`metrics.faithfulness_correlation`) at that subset size,
with the same engine, seeds and conventions (its own seed stream per size).

Known answer: on a linear model with the ``mean`` substrate, x . w_c is Sensitivity-N for
every N (correlation 1 at every size).

``scores``: mean correlation over the sizes, in [-1, 1]; higher is better; headline: mean.
NaN where a size's correlation is undefined (counted in ``MetricResult.dropped``).

Each point of the curve equals Quantus 0.6's FaithfulnessCorrelation on the same subsets.
Quantus's own SensitivityN is another quantity: it removes the *top* features cumulatively
and correlates, per step and *across the samples of a batch*, the n-th feature's attribution
with the cumulative drop (on a linear model the exact map scores 1 only at n = 1), keeping
the first batch only; tests/metrics/test_quantus_reference.py shows it.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_fraction
from metrics.faithfulness_correlation import FaithfulnessCorrelation
from metrics.result import MetricResult, undefined


class SensitivityN(FaithfulnessCorrelation):
    """Sensitivity-N: faithfulness correlation at several subset sizes N, as a curve; ``scores`` is its mean.

    Higher is better; headline: mean. ``needs`` is empty.

    Args:
        fractions (list of float, optional): Subset sizes as fractions of the pixels, each in (0, 1).
            Default: [0.01, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8].
        n_perturbations (int, optional): Random subsets per size and sample, >= 2. Default: 32.
        **kwargs: ``substrate``, ``pooling``, ``score`` (default ``logit``), ``target``, ``chunk_size`` and
            ``seed`` of :class:`~metrics.faithfulness_correlation.FaithfulnessCorrelation`, documented there.
    """

    name = "sensitivity_n"

    def __init__(self, fractions: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8), n_perturbations: int = 32, **kwargs) -> None:
        kwargs.pop("subset_size", None)
        super().__init__(n_perturbations=n_perturbations, **kwargs)
        fractions = list(fractions)
        if not fractions:
            raise ValueError(f"sensitivity_n.fractions must be a non-empty list of fractions in (0, 1); got {fractions}")
        self.fractions = [check_fraction(self.name, "fractions", f) for f in fractions]

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): the clean one per size and one per subset."""
        return len(self.fractions) * (1 + self.n_perturbations)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        finite, pooled = self.removal.masked_pooled(inputs, attributions, self.pooling)
        curve = torch.stack([self.correlations(model, inputs, targets, pooled, f, context, stream=30 + k)
                             for k, f in enumerate(self.fractions)], 1)
        curve[~finite] = math.nan
        score = curve.mean(1)
        dropped = undefined(self.name, {"non-finite attributions": ~finite, "constant subset sums or drops at some size": score.isnan()},
                            len(score))
        return MetricResult(scores=score.float().cpu(), higher_is_better=True, curves=curve.float().cpu(),
                            curve_x=torch.tensor(self.fractions, dtype=torch.float32), dropped=dropped)
