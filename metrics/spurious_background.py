"""Spurious-background ratio (SBR): how much attribution lands on the background.

Builds on attribution localisation (Kohlbrenner et al., IJCNN 2020: mu = R+_in / R+_total,
weighted by S_total / S_in so that a uniform map scores 1).

Definition, with the foreground mask M and the channel-pooled map A (``variant``:
``signed`` = positive part of the channel sum, ``absolute`` = channel sum of |a|):
  BGF = sum_{i not in M} A_i^+ / sum_i A_i^+          (background fraction of the mass)
  a   = |not M| / (H W)                               (background area fraction)
  SBR = BGF / a                                       (``form: ratio``)
  nSBR = (BGF - a) / (1 - a)  if BGF >= a            (``form: normalised``, the default)
         (BGF - a) / a        otherwise
SBR: a uniform or random map scores 1; > 1 means the background is over-attributed; a map
entirely inside the mask scores 0. But its upper bound is 1 / a, which depends on the
image: on the default data (background 72-93 % of the image) a map that lies only on the
background scores 1.08-1.38, hardly above a uniform map's 1. nSBR fixes the top of the
scale for every image: 0 for a uniform (or random) map, 1 for a map entirely on the
background, -1 for a map entirely inside the mask. The lower branch is scaled by a, not
1 - a: (BGF - a) / (1 - a) alone would reach -a / (1 - a) there (-2.6 to -13 on the default
data), so a few foreground-heavy maps would dominate a mean. It is the headline because its "all on the background" end means the
same on every image, so its mean across images is interpretable; both forms are logged
(extras ``ratio`` and ``normalised``). Also logged: the symmetric log-odds form
log(BGF / (1 - BGF)) - log(a / (1 - a)) (BGF clipped to [1e-6, 1 - 1e-6]), which adds
across images.

``scores``: the chosen ``form`` per sample; lower is better; headline: mean. NaN (never a crash, never a
silent hit) where the mask is empty or covers the whole image, or the map has no
positive mass, and, with ``only_correct: true`` (default), where the model
misclassifies the sample (needs ``labels`` in the context); ``MetricResult.dropped``
counts them per reason, with a warning. Extras per sample: ``bgf``, ``background_area``,
``ratio``, ``normalised``, ``log_odds``, ``correct``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_bool, check_choice
from metrics._common import check_maps, check_masks, correctly_classified
from metrics.result import MetricResult, undefined

VARIANTS = ("signed", "absolute")
FORMS = ("normalised", "ratio")


class SpuriousBackground:
    """Spurious-background ratio: the background's share of the positive attribution mass against its area share.

    ``form: normalised`` (default) (BGF - a) / (1 - a) above a, (BGF - a) / a below: 0 for a uniform map,
    1 for a map entirely on the background and -1 for one entirely inside the mask, on every image;
    ``form: ratio`` SBR = BGF / a: 1 for a uniform map, at most 1 / a (which varies with the mask).
    Lower is better; headline: mean. ``needs`` is ``("masks",)``: the dataset must provide exact
    foreground masks (``masks`` in the context; pre-flight checks it), and ``only_correct`` also needs
    the ``labels``.

    Args:
        variant (str, optional): The mass counted: ``signed`` (positive part of the channel sum) or
            ``absolute`` (channel sum of |a|). Default: ``signed``.
        form (str, optional): The score: ``normalised`` ((BGF - a) / (1 - a) above a, (BGF - a) / a
            below; in [-1, 1] on every image) or ``ratio`` (BGF / a); both are logged as extras. Default: ``normalised``.
        only_correct (bool, optional): NaN for samples the model misclassifies (needs ``labels`` in the
            context; an error without them). Default: True.
    """

    needs: tuple[str, ...] = ("masks",)  # checked against the dataset in pre-flight
    def __init__(self, variant: str = "signed", only_correct: bool = True, form: str = "normalised") -> None:
        self.variant = check_choice("spurious_background", "variant", variant, VARIANTS)
        self.form = check_choice("spurious_background", "form", form, FORMS)
        self.only_correct = check_bool("spurious_background", "only_correct", only_correct)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model in one call (for the sweep's cost estimate): none; the correctness filter reads the targets."""
        return 0

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        maps = check_maps("spurious_background", inputs, attributions).double()
        masks = check_masks("spurious_background", context.get("masks"), inputs)
        n = inputs.shape[0]
        pooled = maps.sum(1).clamp_min(0) if self.variant == "signed" else maps.abs().sum(1)
        background = ~masks
        total = pooled.flatten(1).sum(1)
        outside = (pooled * background).flatten(1).sum(1)
        area = background.flatten(1).double().mean(1)
        defined = (total > 0) & (area > 0) & (area < 1) & torch.isfinite(total)
        nan = torch.full((n,), math.nan, dtype=torch.float64, device=inputs.device)
        bgf = torch.where(defined, outside / total.clamp_min(1e-300), nan)
        correct = correctly_classified("spurious_background", model, inputs, context, self.only_correct)
        bgf = torch.where(correct, bgf, nan)
        sbr = bgf / area
        gap = bgf - area
        normalised = torch.where(gap >= 0, gap / (1 - area).clamp_min(1e-300), gap / area.clamp_min(1e-300))
        b = bgf.clamp(1e-6, 1 - 1e-6)
        a = area.clamp(1e-6, 1 - 1e-6)
        log_odds = torch.log(b / (1 - b)) - torch.log(a / (1 - a))
        extras = {"bgf": bgf, "background_area": area, "ratio": sbr, "normalised": normalised, "log_odds": log_odds,
                  "correct": correct.double()}
        dropped = undefined("spurious_background", {
            "empty foreground mask": area >= 1, "no background in the mask": area <= 0,
            "no positive attribution mass": ~((total > 0) & torch.isfinite(total)), "misclassified": ~correct}, n)
        scores = normalised if self.form == "normalised" else sbr
        return MetricResult(scores=scores.float().cpu(), higher_is_better=False, extras={k: v.float().cpu() for k, v in extras.items()},
                            dropped=dropped)
