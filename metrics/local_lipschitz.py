"""Local Lipschitz estimate (Alvarez-Melis & Jaakkola, "On the robustness of interpretability
methods", ICML workshop 2018, and "Towards robust interpretability with self-explaining
neural networks", NeurIPS 2018).

Definition: L(x) = max_{x' in B_r(x)} ||Phi(x) - Phi(x')||_2 / ||x - x'||_2, the largest
ratio of explanation change to input change over a neighbourhood of x, estimated over
the seeded perturbations of :class:`metrics.max_sensitivity.MaxSensitivity`
(``perturbation: uniform``: draws in the L-inf ball of radius ``radius``, as Alvarez-Melis
& Jaakkola's sampling; ``fgsm``: sign-gradient iterates). The explainer
(``context["explainer"]``) is re-run on every perturbed copy for the same targets. Unlike
max-sensitivity it divides by the size of the input change, so it is comparable across
radii; it is in the maps' units (not normalised by ||Phi(x)||, as the paper).

Known answer: for the identity "explainer" Phi(x) = x the estimate is exactly 1; for
Phi(x) = c x it is |c|.

``scores``: L per sample; lower is better; headline: mean. The extra ``mean_ratio`` is
the mean ratio over the perturbations.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from metrics.max_sensitivity import MaxSensitivity
from metrics.result import MetricResult, undefined


class LocalLipschitz(MaxSensitivity):
    """Local Lipschitz estimate: the largest ||Phi(x) - Phi(x')|| / ||x - x'|| over seeded perturbations x' near x.

    Lower is better; headline: mean. ``needs`` is empty.

    Args:
        radius (float, optional): L-inf radius of the perturbations in normalised input units, > 0. Default: 0.1.
        **kwargs: ``n_samples``, ``perturbation``, ``batch_size`` and ``seed`` of
            :class:`~metrics.max_sensitivity.MaxSensitivity`, documented there (``normalise`` does not apply).
    """

    name = "local_lipschitz"
    explanation_norm = 2   # the norm of the explanation's change (Continuity: 1)

    def __init__(self, radius: float = 0.1, **kwargs) -> None:
        kwargs.pop("normalise", None)
        super().__init__(radius=radius, **kwargs)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        xs, maps, base = self.explain_perturbed(model, inputs, targets, attributions, context)
        dx = (xs.double() - inputs.detach().double().unsqueeze(0)).flatten(2).norm(dim=2)        # (S, N)
        ratio = (maps - base.unsqueeze(0)).flatten(2).norm(p=self.explanation_norm, dim=2) / dx.clamp_min(1e-300)
        finite = torch.isfinite(base.flatten(1)).all(1)
        nan = torch.full_like(ratio[0], math.nan)
        dropped = undefined(self.name, {"non-finite attributions": ~finite}, len(finite))
        return MetricResult(scores=torch.where(finite, ratio.amax(0), nan).float().cpu(), higher_is_better=False,
                            extras={"mean_ratio": torch.where(finite, ratio.mean(0), nan).float().cpu()}, dropped=dropped)
