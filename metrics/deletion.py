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

Quantus 0.6's PixelFlipping is this deletion curve (MoRF, ``perturb_baseline="black"``), with
these differences (tests/metrics/test_quantus_reference.py): its curve has no unperturbed point
(it is our ``curves[:, 1:]``, equal per step at equal settings); its "black" is each image's
minimum, not a fixed substrate; its default step is one *channel value*, not one pixel; and its
AUC (``return_auc_per_sample``) is ``np.trapz(dx=1)`` over the K points after each step, i.e.
K x ours - (p_0 + p_1) / 2, which grows with the number of steps: a constant model with output
1/C scores 1/C here at any step size and (K - 1)/C in Quantus.
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
