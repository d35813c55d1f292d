"""The value every metric returns.

Contract (foundation issue): ``metric(model, inputs, targets, attributions, **context)``
returns a :class:`MetricResult` whose ``scores`` is a 1-D tensor with one score per
sample (NaN where the score is undefined for that sample). Curve metrics also fill
``curves`` (N, K) and the shared x-axis ``curve_x`` (K,). ``extras`` holds further
per-sample quantities a metric wants logged beside its headline score. ``dropped``
says, per reason, how many samples have a NaN score (so no headline silently depends on
a selection of samples); :func:`undefined` fills it and warns in one line.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch


@dataclass
class MetricResult:
    """One score per sample, and what else a metric logs beside it (see the module docstring).

    Args:
        scores (torch.Tensor): 1-D, one score per sample; NaN where the score is undefined.
        higher_is_better (bool): The direction of ``scores``.
        curves (torch.Tensor or None, optional): (N, K) per-sample curves of curve metrics. Default: None.
        curve_x (torch.Tensor or None, optional): (K,) x-axis shared by the curves. Default: None.
        extras (dict of str to torch.Tensor, optional): Further per-sample quantities to log.
            Default: empty.
        headline (str, optional): How :meth:`aggregate` combines the defined scores: ``mean`` or
            ``median``. Default: ``mean``.
    """

    scores: torch.Tensor
    higher_is_better: bool
    curves: torch.Tensor | None = None
    curve_x: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    headline: str = "mean"  # how the per-sample scores aggregate: "mean" or "median"
    dropped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scores.dim() != 1:
            raise ValueError(f"MetricResult.scores must be 1-D (one score per sample); got shape {tuple(self.scores.shape)}")
        if self.headline not in ("mean", "median"):
            raise ValueError(f"MetricResult.headline must be 'mean' or 'median'; got {self.headline!r}")
        missing = int(torch.isnan(self.scores).sum()) - sum(self.dropped.values())
        if missing > 0:  # a metric that gives no reason still has its dropped samples counted
            self.dropped = dict(self.dropped) | {"undefined (no reason given)": missing}

    def aggregate(self) -> float:
        """Headline value over the samples where the score is defined (NaN if none is)."""
        valid = self.scores[~torch.isnan(self.scores)].double()
        if valid.numel() == 0:
            return float("nan")
        return float(valid.mean() if self.headline == "mean" else valid.median())


def undefined(name: str, reasons: dict[str, torch.Tensor], n: int) -> dict[str, int]:
    """Count the samples each (N,) bool mask in ``reasons`` marks undefined and warn once per non-empty reason.

    Returns ``{reason: count}`` for :attr:`MetricResult.dropped` (reasons with no sample left out). A sample
    flagged by several reasons counts under the first; the warning says how many of ``n`` samples the
    headline leaves out and why (the runner records warnings in the ``harness.warnings`` tag)."""
    counted = None
    out: dict[str, int] = {}
    for reason, mask in reasons.items():
        mask = mask.detach().bool().reshape(-1).cpu()
        if counted is None:
            counted = torch.zeros_like(mask)
        new = mask & ~counted
        counted |= mask
        k = int(new.sum())
        if k:
            out[reason] = k
            warnings.warn(f"{name}: {k} of {n} samples undefined ({reason}); the headline leaves them out", stacklevel=3)
    return out


def concatenate(parts: list[MetricResult]) -> MetricResult:
    """One result from the results of consecutive batches (a streamed run scores batch by batch).

    Scores, curves and per-sample extras (first dimension the batch's size) are concatenated in
    order; ``curve_x``, direction and headline come from the first part (a metric's x-axis does not
    depend on the batch); ``dropped`` counts add up per reason. Anything else in ``extras`` (not one
    value per sample) is kept from the first part.
    """
    if not parts:
        raise ValueError("concatenate needs at least one MetricResult")
    first = parts[0]
    curves = None if any(p.curves is None for p in parts) else torch.cat([p.curves for p in parts])
    extras: dict[str, torch.Tensor] = {}
    for key, value in first.extras.items():
        per_sample = all(key in p.extras and p.extras[key].dim() >= 1 and len(p.extras[key]) == len(p.scores) for p in parts)
        extras[key] = torch.cat([p.extras[key] for p in parts]) if per_sample else value
    dropped: dict[str, int] = {}
    for part in parts:
        for reason, k in part.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + k
    return MetricResult(torch.cat([p.scores for p in parts]), first.higher_is_better, curves, first.curve_x, extras,
                        first.headline, dropped)
