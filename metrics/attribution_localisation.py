"""Attribution localisation (Kohlbrenner, Bauer, Nakajima, Binder, Samek & Lapuschkin, "Towards best
practice in explaining neural network decisions with LRP", IJCNN 2020).

Definition: mu = R+_in / R+_total, the share of the positive attribution (channel sum,
positive part) that falls inside the foreground mask M; the weighted variant
(``weighted: true``) mu_w = mu x S_total / S_in divides by the mask's area fraction, so
that a uniform map scores 1 on every image and an object-only map scores 1 / area.
Kohlbrenner et al. evaluate only correctly classified samples: ``only_correct: true``
(needs ``labels`` in the context) gives NaN for misclassified ones. Unweighted mu equals
relevance mass accuracy (:mod:`metrics.relevance_mass`, signed variant) and 1 - BGF of
the spurious-background ratio. Quantus 0.6's weighted variant multiplies by the mask's area
share instead of dividing, and takes the image size from a slice of the batch axis
(``a.shape[1:]`` of a batch), so a map of even density scores 0.25·36/((n−2)·144), which depends
on the batch size n (ours: 1; ``tests/metrics/test_quantus_reference.py``); here S is H x W.

``scores``: mu (or mu_w) per sample; higher is better; headline: mean. NaN where the mask
is empty, the map has no positive mass, or (``only_correct``) the sample is
misclassified (counted in ``MetricResult.dropped``). Extra: ``mask_area``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_bool
from metrics._common import check_maps, check_masks, correctly_classified
from metrics.result import MetricResult, undefined


class AttributionLocalisation:
    """Attribution localisation (Kohlbrenner et al.): the positive attribution's share inside the mask, optionally area-weighted.

    Higher is better; headline: mean. ``needs`` is ``("masks",)``; ``only_correct`` also needs the labels.

    Args:
        weighted (bool, optional): Divide by the mask's area fraction (a uniform map scores 1). Default: False.
        only_correct (bool, optional): NaN for misclassified samples (needs ``labels`` in the context),
            as Kohlbrenner et al. Default: False.
    """

    needs: tuple[str, ...] = ("masks",)

    def __init__(self, weighted: bool = False, only_correct: bool = False) -> None:
        self.weighted = check_bool("attribution_localisation", "weighted", weighted)
        self.only_correct = check_bool("attribution_localisation", "only_correct", only_correct)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one with ``only_correct`` (the predictions), else none."""
        return int(self.only_correct)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        positive = check_maps("attribution_localisation", inputs, attributions).double().sum(1).clamp_min(0).flatten(1)
        inside = check_masks("attribution_localisation", context.get("masks"), inputs).flatten(1)
        n = positive.shape[0]
        total = positive.sum(1)
        area = inside.double().mean(1)
        mu = (positive * inside).sum(1) / total.clamp_min(1e-300)
        if self.weighted:
            mu = mu / area.clamp_min(1e-300)
        correct = correctly_classified("attribution_localisation", model, inputs, context, self.only_correct)
        reasons = {"non-finite attributions": ~torch.isfinite(total), "empty foreground mask": area == 0,
                   "no positive attribution mass": ~(total > 0), "misclassified": ~correct}
        bad = torch.stack(list(reasons.values())).any(0)
        dropped = undefined("attribution_localisation", reasons, n)
        return MetricResult(scores=torch.where(bad, torch.full_like(mu, math.nan), mu).float().cpu(), higher_is_better=True,
                            extras={"mask_area": area.float().cpu()}, dropped=dropped)
