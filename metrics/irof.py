"""IROF, iterative removal of features (Rieger & Hansen, "IROF: a low resource evaluation metric
for explanation methods", ICLR 2020 workshop AfricaNLP / arXiv 2003.08747).

Definition: segment the image into superpixels (SLIC), rank them by their *mean*
relevance (the mean of the channel-pooled map over the superpixel's pixels, so large
segments are not favoured), remove them most relevant first, replacing each by the
substrate (Rieger & Hansen: the dataset mean, here ``mean``, zero in normalised space),
and record the target class probability relative to the clean one, p_k / p_0. IROF is
the area *over* that curve on a [0, 1] x-axis: 1 - AUC(p_k / p_0); higher is better.
The curve comes from the deletion engine of :mod:`metrics.ablation` with
``mean_relevance`` ranking (same superpixels, grid, substrates and chunked evaluation).

``scores``: IROF per sample (can leave [0, 1] when removing features raises the
probability above the clean one); higher is better; headline: mean. NaN for non-finite
maps or a clean score <= 0 (possible with ``score: logit``; the ratio needs a positive
score, so keep the default ``softmax``) (counted in ``MetricResult.dropped``).

On the same segments Quantus 0.6's IROF equals S x ours + (1 + r_1) / 2 (S segments, r_1 the
curve after the first): Quantus sums the area over the curve with unit spacing from k = 1,
so its score is in units of segments and grows with the segment count of the image; ours
is normalised to [0, 1] (tests/metrics/test_quantus_reference.py).
"""
from __future__ import annotations

import torch
from torch import nn

from metrics.ablation import AblationCurve
from metrics.result import MetricResult, undefined


class IROF(AblationCurve):
    """IROF: the area over the relative probability curve as superpixels are removed in order of mean relevance.

    :class:`~metrics.ablation.AblationCurve` in ``deletion`` mode, superpixels ranked by mean relevance;
    higher is better; headline: mean. ``needs`` is empty.

    Args:
        granularity (str, optional): ``superpixel`` (SLIC, as the paper), ``patch`` or ``pixel``.
            Default: ``superpixel``.
        n_segments (int, optional): Approximate number of SLIC superpixels, >= 1. Default: 32.
        steps (float, optional): Fraction of the features removed per step, in (0, 1]. Default: 0.05.
        **kwargs: The other arguments of :class:`~metrics.ablation.AblationCurve` (``substrate``, ``score``,
            ``pooling``, ``target``, ``compactness``, ``chunk_size``, ``seed``, ...), documented there; ``mode``
            is always ``deletion``, ``order`` always ``morf`` and ``abpc`` always false.
    """

    mean_relevance = True

    def __init__(self, granularity: str = "superpixel", n_segments: int = 32, steps: float = 0.05, **kwargs) -> None:
        for k in ("mode", "order", "abpc"):
            kwargs.pop(k, None)
        kwargs.setdefault("name", "irof")
        super().__init__(mode="deletion", granularity=granularity, n_segments=n_segments, steps=steps, order="morf", abpc=False, **kwargs)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        curves, x = self.curves(model, inputs, targets, attributions, ["morf"], **context)
        c = curves["morf"].double()
        p0 = c[:, :1]
        zero = (p0 <= 0).squeeze(1)
        rel = (c / p0.clamp_min(1e-300)).masked_fill(zero.view(-1, 1), float("nan"))
        n = c.shape[0]
        score = 1 - torch.trapezoid(rel, x.double().view(1, -1).expand(n, -1), dim=1)
        score = score.masked_fill(zero, float("nan"))
        dropped = undefined(self.name, {"non-finite attributions": c.isnan().any(1), "clean score <= 0": zero}, n)
        return MetricResult(scores=score.float(), higher_is_better=True, curves=rel.float(), curve_x=x.float(), dropped=dropped)
