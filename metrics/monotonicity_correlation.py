"""Monotonicity correlation (Nguyen & Martinez, "On quantitative aspects of model
interpretability", arXiv 2007.07584, 2020).

Definition: a map is monotonic if features with larger attribution magnitude have larger
effects on the model: the Spearman rank correlation, over the features i (pixels or
square patches, all channels together), between |a_i| (channel-pooled map summed over
the feature) and |f(x) - f(x_[x_i = substrate])|, the magnitude of the target score's
change when feature i alone is removed. Nguyen & Martinez estimate the effect as the
variance of f over several perturbations of the feature; with the deterministic
substrates here (default ``mean``, zero in normalised space) one removal per feature gives
the squared change exactly, whose ranks equal those of |change|. With ``substrate:
noise`` one seeded draw is used. Same engine and conventions as
:mod:`metrics.faithfulness_estimate`, of which this is the rank-and-magnitude variant.

Known answer: on a linear model a feature's change is exactly its share of x . w_c, so
the map x . w_c (or its negation: magnitudes) scores 1.

Quantus's MonotonicityCorrelation with the deterministic "black" baseline (the image
minimum; 0 here = our ``zero``/``mean`` substrate) gives the same values
(tests/metrics/test_quantus_reference.py).

``scores``: Spearman rho in [-1, 1]; higher is better; headline: mean. NaN where the
magnitudes are constant (counted in ``MetricResult.dropped``).
"""
from __future__ import annotations

from metrics.faithfulness_estimate import FaithfulnessEstimate


class MonotonicityCorrelation(FaithfulnessEstimate):
    """Monotonicity correlation: Spearman correlation between |relevance| and |score change| over single-feature removals.

    ``scores`` in [-1, 1]; higher is better; headline: mean. ``needs`` is empty.

    Args:
        correlation (str, optional): ``spearman`` (as Nguyen & Martinez) or ``pearson``. Default: ``spearman``.
        **kwargs: ``granularity``, ``patch_size``, ``substrate``, ``pooling``, ``score`` (default ``logit``),
            ``target``, ``chunk_size`` and ``seed`` of :class:`~metrics.faithfulness_estimate.FaithfulnessEstimate`,
            documented there.
    """

    name = "monotonicity_correlation"
    absolute = True

    def __init__(self, correlation: str = "spearman", **kwargs) -> None:
        super().__init__(correlation=correlation, **kwargs)
