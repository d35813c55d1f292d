"""Monotonicity (Arya et al., "One explanation does not fit all: a toolkit and taxonomy of AI
explainability techniques", arXiv 1909.03012, 2019).

Definition: start from the substrate (default ``mean``, zero in normalised space) and add
the features back in order of *increasing* attribution (least relevant first); a faithful
map makes the target score rise at every step. Arya et al. report 1 if the curve is
non-decreasing and 0 otherwise (extra ``monotone``); ``scores`` is the continuous version,
the fraction of the K steps whose score does not decrease (ties within ``tolerance``
count as non-decreasing), so one noisy step costs 1/K instead of everything.

The curve is the insertion curve of :mod:`metrics.ablation` with ``order: lerf`` (same
features, grid, substrates, scores, targets and chunked evaluation; N (K + 1) forward
passes at most). Default score ``logit``: probabilities saturate and flatten the curve.

Known answers: on a linear model with one pixel per step and score ``logit``, step k
adds exactly one contribution c_i = sum over channels of w_ci x_i, so the score is the
fraction of pixels with c_i >= 0 (whatever the order), and 1 when every contribution is
positive. The metric therefore only discriminates between maps on non-additive models:
it checks the ordering's consistency with the model's response, not the sign of the map.

Quantus 0.6's Monotonicity cannot be compared: its perturbation function writes the
*baseline* value at the "added" indices of the baseline image, so the image never changes,
the curve is flat and every map is reported monotonic (tests/metrics/test_quantus_reference.py).

``scores``: fraction of non-decreasing steps in [0, 1]; higher is better; headline: mean.
``curves``/``curve_x``: the insertion-LeRF curve. NaN for non-finite maps (counted in
``MetricResult.dropped``).
"""
from __future__ import annotations

import torch
from torch import nn

from metrics.ablation import AblationCurve
from metrics.result import MetricResult, undefined


class Monotonicity(AblationCurve):
    """Monotonicity (Arya et al.): the fraction of steps at which adding the next-least-relevant features raises the score.

    :class:`~metrics.ablation.AblationCurve` in ``insertion`` mode with ``order: lerf``; higher is better;
    headline: mean; the extra ``monotone`` is Arya's all-or-nothing 1/0. ``needs`` is empty.

    Args:
        substrate (str, optional): The start image (see :class:`~metrics.ablation.AblationCurve`). Default: ``mean``.
        score (str, optional): ``logit``, ``softmax`` or ``correct`` of the target class. Default: ``logit``.
        tolerance (float, optional): A step whose score falls by at most this much counts as non-decreasing,
            >= 0. Default: 1e-6.
        **kwargs: The other arguments of :class:`~metrics.ablation.AblationCurve` (``steps``, ``granularity``,
            ``patch_size``, ``pooling``, ``target``, ``chunk_size``, ``seed``, ...), documented there; ``mode``
            is always ``insertion``, ``order`` always ``lerf`` and ``abpc`` always false.
    """

    def __init__(self, substrate: str = "mean", score: str = "logit", tolerance: float = 1e-6, **kwargs) -> None:
        for k in ("mode", "order", "abpc"):
            kwargs.pop(k, None)
        kwargs.setdefault("name", "monotonicity")
        super().__init__(mode="insertion", substrate=substrate, score=score, order="lerf", abpc=False, **kwargs)
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
            raise ValueError(f"monotonicity.tolerance must be a number >= 0; got {tolerance!r}")
        self.tolerance = float(tolerance)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        curves, x = self.curves(model, inputs, targets, attributions, ["lerf"], **context)
        c = curves["lerf"].double()
        rising = (c.diff(dim=1) >= -self.tolerance).double()
        score = rising.mean(1).masked_fill(c.isnan().any(1), float("nan"))
        monotone = (rising.min(1).values).masked_fill(score.isnan(), float("nan"))
        dropped = undefined(self.name, {"non-finite attributions": score.isnan()}, len(score))
        return MetricResult(scores=score.float(), higher_is_better=True, curves=c.float(), curve_x=x.float(),
                            extras={"monotone": monotone.float()}, dropped=dropped)
