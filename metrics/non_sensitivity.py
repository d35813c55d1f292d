"""Non-sensitivity (Nguyen & Martinez, "On quantitative aspects of model interpretability",
arXiv 2007.07584, 2020).

Definition: a map should give zero attribution exactly to the features the model does
not respond to. Remove each feature i (pixel or square patch, all channels together) alone,
replacing it by the substrate, and compare two sets:
  Z = { i : |a_i| <= eps x max_j |a_j| }           (features the map calls irrelevant)
  U = { i : |f(x) - f(x_[x_i = substrate])| <= delta x max_j |f(x) - f(x_[x_j])| }   (features the model ignores)
Non-sensitivity = |Z symmetric-difference U| / F, the fraction of features on which the
map and the model disagree about "has an effect" (Nguyen & Martinez count |Z \\ U| and
Quantus the symmetric difference; here the symmetric difference, as a fraction of the F
features, so that image sizes compare). Relevance a_i is the channel-pooled map summed
over the feature; f the target score (default logit of the predicted class). Both
thresholds are relative, so neither the map's nor the model's scale matters. One forward
pass per feature (engine: :mod:`metrics.removal`).

Known answer: on a linear model where some pixels have zero weight, the map x . w_c
scores 0; a map that zeroes pixels the model uses scores their fraction.

``scores``: the fraction in [0, 1]; lower is better; headline: mean. Extras ``zero_but_used``
(|Z \\ U| / F) and ``nonzero_but_unused`` (|U \\ Z| / F). NaN for non-finite maps or a
model that responds to no feature (counted in ``MetricResult.dropped``).

Where the unused features have exactly no effect, ours x F equals Quantus 0.6's
NonSensitivity (which counts features, with absolute thresholds ``eps`` on the max-normalised
map and on the raw drop, so its verdict depends on the model's output scale);
tests/metrics/test_quantus_reference.py.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from metrics.removal import SingleFeatureRemoval
from metrics.result import MetricResult, undefined


class NonSensitivity(SingleFeatureRemoval):
    """Non-sensitivity: the fraction of features where "zero attribution" and "no effect on the model" disagree.

    Lower is better; headline: mean. ``needs`` is empty.

    Args:
        eps (float, optional): |a_i| at most eps x max |a| counts as zero attribution, in [0, 1). Default: 1e-05.
        delta (float, optional): A change at most delta x the largest change counts as no effect, in [0, 1).
            Default: 1e-05.
        granularity (str, optional): ``patch`` or ``pixel``. Default: ``patch``.
        patch_size (int, optional): Side of a square patch in pixels, >= 1 (``granularity=patch``). Default: 4.
        substrate (str, optional): ``mean`` (zero in normalised space), ``zero``, ``blur`` or ``noise``. Default: ``mean``.
        pooling (str, optional): Channel pooling: ``sum``, ``abs_sum``, ``max`` or ``abs_max``. Default: ``sum``.
        score (str, optional): ``logit``, ``softmax`` or ``correct``. Default: ``logit``.
        target (str, optional): ``predicted``, ``label`` or ``explained``. Default: ``predicted``.
        chunk_size (int or None, optional): Perturbed images per forward pass, >= 1; null: automatic. Default: None.
        seed (int or None, optional): The ``noise`` substrate; null takes the run's seed. Default: None.
    """

    def __init__(self, eps: float = 1e-5, delta: float = 1e-5, granularity: str = "patch", patch_size: int = 4, substrate: str = "mean",
                 pooling: str = "sum", score: str = "logit", target: str = "predicted", chunk_size: int | None = None,
                 seed: int | None = None) -> None:
        name = "non_sensitivity"
        for key, value in (("eps", eps), ("delta", delta)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{name}.{key} must be in [0, 1) (relative threshold); got {value!r}")
        self.eps, self.delta = float(eps), float(delta)
        self.setup(name, granularity, patch_size, substrate, pooling, score, target, chunk_size, seed)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        finite, relevance, drops = self.effects(model, inputs, targets, attributions, context)
        rel, eff = relevance.abs(), drops.abs()
        zero = rel <= self.eps * rel.amax(1, keepdim=True)
        unused = eff <= self.delta * eff.amax(1, keepdim=True)
        f = rel.shape[1]
        zero_but_used, nonzero_but_unused = (zero & ~unused).sum(1).double() / f, (~zero & unused).sum(1).double() / f
        responds = eff.amax(1) > 0
        bad = ~finite | ~responds
        nan = torch.full_like(zero_but_used, math.nan)
        score = torch.where(bad, nan, zero_but_used + nonzero_but_unused)
        dropped = undefined("non_sensitivity", {"non-finite attributions": ~finite, "the model responds to no feature": ~responds}, len(score))
        extras = {"zero_but_used": torch.where(bad, nan, zero_but_used).float().cpu(),
                  "nonzero_but_unused": torch.where(bad, nan, nonzero_but_unused).float().cpu()}
        return MetricResult(scores=score.float().cpu(), higher_is_better=False, extras=extras, dropped=dropped)
