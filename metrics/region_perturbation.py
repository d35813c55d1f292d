"""Region perturbation and AOPC (Samek, Binder, Montavon, Lapuschkin & Mueller, "Evaluating the
visualization of what a deep neural network has learned", IEEE TNNLS 2017).

Definition: remove square regions in order of relevance (MoRF, most relevant first;
LeRF optional), replacing them by the substrate (Samek et al.: uniform noise, here the
seeded ``noise`` substrate), and record the target score f after each step k = 0..L.
The area over the perturbation curve is
  AOPC = 1 / (L + 1) sum_{k=0..L} ( f(x^(0)) - f(x^(k)) ),
the mean drop from the clean score (k = 0 contributes 0, as in the paper's formula).
MoRF: higher is better (fast drop); LeRF: lower is better. Regions are
``patch_size`` squares (Samek et al.: 9 x 9 at 224 px), ranked by the sum of their
relevance; ``steps`` regions fraction per step. The curves come from the deletion engine
of :mod:`metrics.ablation` (same conventions, chunked, N (L + 1) forward passes per
order at most). With ``abpc: true`` the opposite order is run too and the extras
``aopc_morf``, ``aopc_lerf`` and ``aopc_gap`` = AOPC_MoRF - AOPC_LeRF (higher is better) are logged.

Known answer: on a linear model with the ``mean`` substrate and score ``logit``, the
drop after removing a set of regions is their summed contribution, so x . w_c gives the
largest MoRF AOPC of all orderings (greedy order of the largest contributions).

Quantus's RegionPerturbation returns the drops f(x) - f(x^(k)) for k = 1..L; at equal
settings (``zero`` substrate on images whose minimum is 0, Quantus's "black") they equal
ours exactly (tests/metrics/test_quantus_reference.py).

``scores``: AOPC of ``order`` per sample; headline: mean; NaN for non-finite maps (counted
in ``MetricResult.dropped``).
"""
from __future__ import annotations

import torch
from torch import nn

from metrics.ablation import AblationCurve, fixed_mode
from metrics.result import MetricResult, undefined


class RegionPerturbation(AblationCurve):
    """AOPC of region perturbation (Samek et al. 2017): the mean drop of the target score as regions are removed.

    :class:`~metrics.ablation.AblationCurve` in ``deletion`` mode; MoRF: higher is better; headline: mean.
    ``needs`` is empty.

    Args:
        granularity (str, optional): The regions: ``patch``, ``pixel`` or ``superpixel``. Default: ``patch``.
        patch_size (int, optional): Side of a square region in pixels, >= 1. Default: 2.
        substrate (str, optional): What removed regions become (Samek et al.: uniform noise). Default: ``noise``.
        score (str, optional): ``logit``, ``softmax`` or ``correct``. Default: ``softmax``.
        abpc (bool, optional): Also run the opposite order and log ``aopc_morf``, ``aopc_lerf`` and
            ``aopc_gap``; doubles the cost. Default: False.
        **kwargs: The other arguments of :class:`~metrics.ablation.AblationCurve` (``steps``, ``order``,
            ``pooling``, ``target``, ``fractions``, ``chunk_size``, ``seed``, ...), documented there; ``mode``
            is always ``deletion`` (another is refused).
    """

    def __init__(self, granularity: str = "patch", patch_size: int = 2, substrate: str = "noise", score: str = "softmax",
                 abpc: bool = False, **kwargs) -> None:
        kwargs.setdefault("name", "region_perturbation")
        super().__init__(mode=fixed_mode("region_perturbation", "deletion", kwargs),
                         granularity=granularity, patch_size=patch_size, substrate=substrate, score=score,
                         abpc=abpc, **kwargs)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        other = {"morf": "lerf", "lerf": "morf"}[self.order]
        curves, x = self.curves(model, inputs, targets, attributions, [self.order] + ([other] if self.abpc else []), **context)
        aopc = {o: (c[:, :1].double() - c.double()).mean(1).float() for o, c in curves.items()}
        extras = {}
        if self.abpc:
            extras = {"aopc_morf": aopc["morf"], "aopc_lerf": aopc["lerf"], "aopc_gap": aopc["morf"] - aopc["lerf"]}
        score = aopc[self.order]
        dropped = undefined(self.name, {"non-finite attributions": score.isnan()}, len(score))
        return MetricResult(scores=score, higher_is_better=self.order == "morf", curves=curves[self.order].float(),
                            curve_x=x.float(), extras=extras, dropped=dropped)
