"""Deletion metric (Petsiuk, Das & Saenko, "RISE", BMVC 2018).

Replace features, most relevant first, with a substrate (default: the dataset mean,
zero in normalised space, as RISE) and record the softmax probability of the class
predicted on the clean input; ``scores`` is the area under that curve on a [0, 1]
x-axis (trapezoid rule), ``curves``/``curve_x`` hold the curve. Lower is better for
the default most-relevant-first order (``higher_is_better`` flips for LeRF);
headline: mean. With ``abpc: true`` the extras ``auc_morf``, ``auc_lerf`` and ``abpc``
(= AUC_LeRF - AUC_MoRF, higher is better) are logged per sample. Substrates include
ROAD's noisy linear imputation (``substrate: road``). The engine and all conventions
are documented in :mod:`metrics.ablation`.
"""
from __future__ import annotations

from metrics.ablation import AblationCurve, fixed_mode


class Deletion(AblationCurve):
    """Deletion AUC: remove features, most relevant first, and score the model after every step.

    :class:`~metrics.ablation.AblationCurve` with ``mode='deletion'``: changed features are replaced
    by the ``substrate`` (default ``mean``, zero in normalised space, as RISE). ``scores`` is the area
    under the target-class curve; lower is better for MoRF (higher for LeRF); headline: mean. The extra
    ``abpc`` is AUC_LeRF - AUC_MoRF (higher is better). ``needs`` is empty.

    Args:
        **kwargs: The arguments of :class:`~metrics.ablation.AblationCurve`, documented there, with
            its defaults; ``mode`` is always ``deletion`` (another ``mode`` is refused).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(mode=fixed_mode("deletion", "deletion", kwargs), **kwargs)
