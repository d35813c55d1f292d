"""Insertion metric (Petsiuk, Das & Saenko, "RISE", BMVC 2018).

Start from a substrate (RISE: a blurred copy of the image) and restore features,
most relevant first; the score is the area under the predicted-class probability
curve on a [0, 1] x-axis. Higher is better for the default most-relevant-first
order. The engine and all conventions live in :mod:`metrics.ablation`.
"""
from __future__ import annotations

from metrics.ablation import AblationCurve


class Insertion(AblationCurve):
    def __init__(self, substrate: str = "blur", **kwargs) -> None:
        super().__init__(mode="insertion", substrate=substrate, **kwargs)
