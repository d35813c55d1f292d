"""Insertion metric (Petsiuk, Das & Saenko, "RISE", BMVC 2018).

Start from a substrate (RISE: a Gaussian-blurred copy of the image) and restore
features, most relevant first; ``scores`` is the area under the softmax probability
curve of the class predicted on the clean input, on a [0, 1] x-axis (trapezoid
rule). Higher is better for the default most-relevant-first order (``higher_is_better``
flips for LeRF); headline: mean. With ``abpc: true`` the extras ``auc_morf``,
``auc_lerf`` and ``abpc`` (= AUC_MoRF - AUC_LeRF, higher is better) are logged per
sample. The engine and all conventions are documented in :mod:`metrics.ablation`.
Quantus 0.6 has no insertion metric (its PixelFlipping is deletion; see :mod:`metrics.deletion`).
"""
from __future__ import annotations

from metrics.ablation import AblationCurve, fixed_mode


class Insertion(AblationCurve):
    """Insertion AUC: restore features onto a substrate, most relevant first, scoring the model at each step.

    :class:`~metrics.ablation.AblationCurve` with ``mode='insertion'``: the curve starts from the
    ``substrate`` (default a blurred copy of the image, as RISE) and restores the changed features
    from the image. ``scores`` is the area under the target-class curve; higher is better for MoRF
    (lower for LeRF); headline: mean. The extra ``abpc`` is AUC_MoRF - AUC_LeRF (higher is better).
    ``needs`` is empty.

    Args:
        substrate (str, optional): The start image: ``blur`` (Gaussian, as RISE's insertion), ``mean``
            (zero in normalised space), ``zero`` (black), ``noise`` (seeded) or ``road`` (ROAD's noisy
            linear imputation of the pixels not yet restored). Default: ``blur``.
        **kwargs: The other arguments of :class:`~metrics.ablation.AblationCurve`, documented there,
            with its defaults; ``mode`` is always ``insertion`` (another ``mode`` is refused).
    """

    def __init__(self, substrate: str = "blur", **kwargs) -> None:
        super().__init__(mode=fixed_mode("insertion", "insertion", kwargs), substrate=substrate, **kwargs)
