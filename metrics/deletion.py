"""Deletion metric (Petsiuk, Das & Saenko, "RISE", BMVC 2018).

Replace features, most relevant first, with a substrate (default: the dataset mean,
zero in normalised space, as RISE) and record the predicted-class probability;
the score is the area under that curve on a [0, 1] x-axis. Lower is better for the
default most-relevant-first order. The engine and all conventions live in
:mod:`metrics.ablation`.
"""
from __future__ import annotations

from metrics.ablation import AblationCurve


class Deletion(AblationCurve):
    def __init__(self, **kwargs) -> None:
        super().__init__(mode="deletion", **kwargs)
