"""Selectivity (Montavon, Samek & Mueller, "Methods for interpreting and understanding deep neural
networks", Digital Signal Processing 2018).

Definition: remove square patches in order of decreasing relevance and record the model's
target score after each removal; a selective explanation makes the score drop fast.
``scores`` is the area under that curve on a [0, 1] x-axis (trapezoid rule); lower is
better. This is the deletion curve of :mod:`metrics.ablation` (same engine and
conventions) with Montavon et al.'s settings as defaults: patches (their 4 x 4 at 32 px
here ``patch_size`` 4, one patch per step is ``steps`` 1 / number of patches; the default
0.05 removes about 5 % of the patches per step), score ``logit`` (their f(x), the
evidence for the class) and ``zero`` (black) as the removed value. Quantus's Selectivity
uses a "black" baseline that is the image's minimum and an AUC with step width 1; with
an image minimum of 0 and one patch per step its curves equal ours exactly
(tests/metrics/test_quantus_reference.py).

``scores``: AUC per sample; lower is better for MoRF; headline: mean. NaN for non-finite
maps (counted in ``MetricResult.dropped``).
"""
from __future__ import annotations

from metrics.ablation import AblationCurve, fixed_mode


class Selectivity(AblationCurve):
    """Selectivity (Montavon et al. 2018): the area under the target-score curve as patches are removed, most relevant first.

    :class:`~metrics.ablation.AblationCurve` in ``deletion`` mode with patch defaults; lower is better (MoRF);
    headline: mean. ``needs`` is empty.

    Args:
        granularity (str, optional): ``patch``, ``pixel`` or ``superpixel``. Default: ``patch``.
        patch_size (int, optional): Side of a patch in pixels, >= 1. Default: 4.
        substrate (str, optional): What removed patches become. Default: ``zero``.
        score (str, optional): ``logit``, ``softmax`` or ``correct``. Default: ``logit``.
        abpc (bool, optional): Also run LeRF and log ``auc_morf``, ``auc_lerf``, ``abpc``. Default: False.
        **kwargs: The other arguments of :class:`~metrics.ablation.AblationCurve`, documented there; ``mode``
            is always ``deletion`` (another is refused).
    """

    def __init__(self, granularity: str = "patch", patch_size: int = 4, substrate: str = "zero", score: str = "logit",
                 abpc: bool = False, **kwargs) -> None:
        kwargs.setdefault("name", "selectivity")
        super().__init__(mode=fixed_mode("selectivity", "deletion", kwargs),
                         granularity=granularity, patch_size=patch_size, substrate=substrate, score=score,
                         abpc=abpc, **kwargs)
