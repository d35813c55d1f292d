"""Relative input, representation and output stability (Agarwal, Johnson, Pawelczyk, Krishna,
Saxena, Zitnik & Lakkaraju, "Rethinking stability for attribution-based explanations",
ICLR 2022 workshop / arXiv 2203.06877).

Definition, over perturbations x' of x that keep the predicted class (Agarwal et al.'s
neighbourhood; perturbations that change it are left out), with the explanation's
relative change  e(x') = || (Phi(x) - Phi(x')) / Phi(x) ||_2  (element-wise division,
Phi(x) offset by ``eps`` where |Phi(x)| < eps, as the paper's epsilon):
  RIS = max_{x'} e(x') / max( || (x - x') / x ||_2 , eps_min )          (``kind: input``)
  RRS = max_{x'} e(x') / max( || (L(x) - L(x')) / L(x) ||_2 , eps_min )  (``kind: representation``)
  ROS = max_{x'} e(x') / max( || h(x) - h(x') ||_2 , eps_min )            (``kind: output``)
with h the logits and L the input of the model's last ``nn.Linear`` (its penultimate
representation; read with a forward hook that is removed afterwards), x offset by
``eps`` like Phi(x). Perturbations are the seeded ones of
:class:`metrics.max_sensitivity.MaxSensitivity` (default: uniform in an L-inf ball of
radius 0.05); the explainer (``context["explainer"]``) is re-run on each for the same
targets.

``scores``: the stability ratio per sample; lower is better (more stable); headline:
mean. NaN where no perturbation keeps the prediction or the map is not finite (counted
in ``MetricResult.dropped``, with a warning). Extra ``kept``: the fraction of the
perturbations kept. Logs the ratio itself, not Agarwal's log-scale plots.

On the same perturbations the three kinds equal Quantus 0.6's RelativeInput / Output /
RepresentationStability (the last with ``layer_names`` = the layer feeding the last
``nn.Linear``) when no perturbation changes a prediction. When one does, Quantus sets that
draw to NaN and then takes ``np.max``, so the whole sample becomes NaN; ours takes the
maximum over the draws that keep the prediction (both shown in tests/metrics/test_quantus_reference.py).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.validation import check_choice, check_positive
from metrics._common import untouched
from metrics.max_sensitivity import MaxSensitivity
from metrics.result import MetricResult, undefined

KINDS = ("input", "representation", "output")


def relative(a: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    """|| (a - b) / a ||_2 over all but the leading dims of b (a broadcast), with |a| < eps replaced by eps (sign kept)."""
    safe = torch.where(a.abs() < eps, torch.full_like(a, eps) * torch.where(a < 0, -1.0, 1.0), a)
    return ((a - b) / safe).flatten(2).norm(dim=2)


class RelativeStability(MaxSensitivity):
    """Relative input / representation / output stability: the explanation's relative change over the input's (or model's).

    Lower is better; headline: mean. ``needs`` is empty.

    Args:
        kind (str, optional): The denominator: ``input`` (RIS), ``representation`` (RRS, the input of the
            last ``nn.Linear``) or ``output`` (ROS, the logits). Default: ``input``.
        radius (float, optional): L-inf radius of the perturbations in normalised input units, > 0. Default: 0.05.
        eps (float, optional): Offset of near-zero entries before element-wise division, > 0. Default: 1e-06.
        eps_min (float, optional): Floor of the denominator, > 0. Default: 1e-06.
        **kwargs: ``n_samples``, ``perturbation``, ``batch_size`` and ``seed`` of
            :class:`~metrics.max_sensitivity.MaxSensitivity`, documented there (``normalise`` does not apply).
    """

    name = "relative_stability"

    def __init__(self, kind: str = "input", radius: float = 0.05, eps: float = 1e-6, eps_min: float = 1e-6, **kwargs) -> None:
        kwargs.pop("normalise", None)
        super().__init__(radius=radius, **kwargs)
        self.kind = check_choice(self.name, "kind", kind, KINDS)
        self.eps = check_positive(self.name, "eps", eps)
        self.eps_min = check_positive(self.name, "eps_min", eps_min)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one explanation and one forward pass per perturbation."""
        return 2 * self.n_samples + 1

    def outputs(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits and (``kind: representation``) the input of the last ``nn.Linear``, under no_grad."""
        rep: list[torch.Tensor] = []
        handle = None
        if self.kind == "representation":
            linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError("relative_stability.kind=representation needs a model with an nn.Linear head; use kind=output or input")
            handle = linears[-1].register_forward_pre_hook(lambda m, args: rep.append(args[0].detach()))
        try:
            with untouched(model), torch.no_grad():
                logits = model(x).double()
        finally:
            if handle is not None:
                handle.remove()
        return logits, (rep[0].double().flatten(1) if rep else None)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        xs, maps, base = self.explain_perturbed(model, inputs, targets, attributions, context)
        s, n = xs.shape[:2]
        e = relative(base.unsqueeze(0), maps, self.eps)                                                 # (S, N)
        h, rep = self.outputs(model, inputs.detach())
        hs, reps = self.outputs(model, xs.flatten(0, 1))
        hs = hs.view(s, n, -1)
        if self.kind == "input":
            d = relative(inputs.detach().double().unsqueeze(0), xs.double(), self.eps)
        elif self.kind == "output":
            d = (hs - h.unsqueeze(0)).norm(dim=2)
        else:
            d = relative(rep.unsqueeze(0), reps.view(s, n, -1), self.eps)
        ratio = e / d.clamp_min(self.eps_min)
        kept = hs.argmax(2) == h.argmax(1).view(1, -1)                                               # (S, N)
        ratio = ratio.masked_fill(~kept, -math.inf).amax(0)
        finite = torch.isfinite(base.flatten(1)).all(1)
        none_kept = ~kept.any(0)
        ratio = ratio.masked_fill(none_kept | ~finite, math.nan)
        dropped = undefined(self.name, {"non-finite attributions": ~finite, "no perturbation keeps the prediction": none_kept}, n)
        return MetricResult(scores=ratio.float().cpu(), higher_is_better=False, extras={"kept": kept.double().mean(0).float().cpu()},
                            dropped=dropped)
