"""Insertion metric (Petsiuk, Das & Saenko, "RISE", BMVC 2018).

Start from a substrate (RISE: a Gaussian-blurred copy of the image) and restore
features, most relevant first; ``scores`` is the area under the softmax probability
curve of the class predicted on the clean input, on a [0, 1] x-axis (trapezoid
rule). Higher is better for the default most-relevant-first order (``higher_is_better``
flips for LeRF); headline: mean. With ``abpc: true`` the extras ``auc_morf``,
``auc_lerf`` and ``abpc`` (= AUC_MoRF - AUC_LeRF, higher is better) are logged per
sample. The engine and all conventions are documented in :mod:`metrics.ablation`.
"""
from __future__ import annotations

from metrics.ablation import AblationCurve


class Insertion(AblationCurve):
    def __init__(self, substrate: str = "blur", **kwargs) -> None:
        kwargs.pop("mode", None)
        super().__init__(mode="insertion", substrate=substrate, **kwargs)
