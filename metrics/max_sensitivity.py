"""Max-sensitivity (Yeh, Hsieh, Suggala, Inouye & Ravikumar, "On the (in)fidelity and sensitivity
of explanations", NeurIPS 2019).

Definition (Yeh et al., eq. 4, ``normalise: false``): SENS_max = max over perturbations
delta with ||delta||_inf <= r of ||Phi(x + delta) - Phi(x)||_F. With ``normalise: true``
(the default, as Quantus and the robustness literature after Yeh) the change is divided by
||Phi(x)||_F: a relative change, which does not depend on the scale of the maps, so that
methods whose maps differ in scale by orders of magnitude (gradients vs. gradient x input
vs. CAMs in [0, 1]) can be ranked at all; the unnormalised value ranks the scales. Phi is the explainer
(``context["explainer"]``, re-run on the perturbed inputs for the same targets) and
Phi(x) the attributions under evaluation. The maximum is estimated over ``n_samples``
perturbations (inputs are normalised; r is in input units, Captum's default 0.02):
* ``perturbation: uniform``: delta ~ U[-r, r]^d, seeded per (sample id, draw), so the
  draws do not depend on the batch;
* ``perturbation: fgsm``: iterative FGSM steps (Goodfellow et al. 2015; Kurakin et al.
  2017) x_j = x_{j-1} + (r / n) sign(grad_x CE(f(x_{j-1}), target)), j = 1..n, which stay
  inside the ball; the maximum is taken over the n iterates.
All N * n_samples perturbed inputs are explained in batches of ``batch_size``
(default: all at once).

``scores``: SENS_max per sample; lower is better; headline: mean. Normalised: NaN where
Phi(x) = 0 (counted in ``MetricResult.dropped``, with a warning).
Extras: ``mean_sensitivity`` (average over the perturbations instead of the max).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from methods.types import explain_samples
from methods.validation import check_bool, check_choice, check_int, check_positive, check_seed
from metrics._common import check_maps, sample_ids, uniform, untouched
from metrics.result import MetricResult, undefined


class MaxSensitivity:
    """Max-sensitivity: the largest relative change of the explanation under small input perturbations.

    Per sample the maximum over ``n_samples`` perturbations d with ||d||_inf <= ``radius`` of
    ||Phi(x + d) - Phi(x)|| / ||Phi(x)|| (``normalise: false``: Yeh et al.'s ||Phi(x + d) - Phi(x)||),
    re-running the explainer (``explainer`` in the context) for the same targets; lower is better;
    headline: mean; NaN where Phi(x) = 0 and normalised. ``needs`` is empty.

    Args:
        radius (float, optional): L-inf radius in normalised input units, > 0 (Captum's default).
            Default: 0.02.
        n_samples (int, optional): Perturbations per sample (uniform draws or FGSM iterates), >= 1.
            Default: 10.
        perturbation (str, optional): ``uniform`` (seeded draws in the ball) or ``fgsm`` (iterative
            sign-gradient steps of size radius / n_samples; the maximum over the iterates).
            Default: ``uniform``.
        batch_size (int or None, optional): Perturbed inputs per explainer call, >= 1; null: all at
            once. Default: None.
        normalise (bool, optional): Divide by ||Phi(x)|| (scale-free, comparable across methods);
            false: Yeh et al.'s unnormalised definition, in the maps' own units. Default: True.
        seed (int or None, optional): The uniform draws (``fgsm`` draws nothing); null takes the run's
            seed (the harness fills it in). Default: None.
    """

    needs: tuple[str, ...] = ()
    name = "max_sensitivity"
    average = False   # the score is the max over the perturbations (AverageSensitivity: their mean)

    def __init__(self, radius: float = 0.02, n_samples: int = 10, perturbation: str = "uniform",
                 batch_size: int | None = None, seed: int | None = None, normalise: bool = True) -> None:
        name = self.name
        self.normalise = check_bool(name, "normalise", normalise)
        self.radius = check_positive(name, "radius", radius)
        self.n_samples = check_int(name, "n_samples", n_samples)
        self.perturbation = check_choice(name, "perturbation", perturbation, ("uniform", "fgsm"))
        self.batch_size = check_int(name, "batch_size", batch_size, allow_none=True)
        self.seed = check_seed(name, seed)

    def perturbed(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """(n_samples, N, C, H, W) perturbed inputs."""
        s, r = self.n_samples, self.radius
        if self.perturbation == "uniform":
            draw_ids = (ids.view(1, -1) * s + torch.arange(s, device=inputs.device).view(-1, 1)).flatten()
            u = uniform(self.seed, 5, draw_ids, tuple(inputs.shape[1:]), inputs.dtype).view(s, *inputs.shape)
            return inputs.unsqueeze(0) + (2 * u - 1) * r
        out, x = [], inputs.detach()
        with untouched(model):
            for _ in range(s):  # inherently sequential: each step starts from the previous iterate
                xg = x.clone().requires_grad_(True)
                with torch.enable_grad():
                    loss = F.cross_entropy(model(xg), targets, reduction="sum")
                    (grad,) = torch.autograd.grad(loss, xg)
                x = (x + (r / s) * grad.sign()).detach()
                out.append(x)
        return torch.stack(out)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model in one call (for the sweep's cost estimate): one explanation of each perturbed copy, counted as one pass each."""
        return self.n_samples

    def explain_perturbed(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor,
                          context: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(perturbed inputs (S, N, C, H, W), their maps (S, N, ...) float64, the original maps (N, ...) float64)``:
        the explainer (``context["explainer"]``) re-run on every perturbed copy for the same targets."""
        explainer = context.get("explainer")
        if explainer is None:
            raise ValueError(f"{self.name} needs the explainer in the context (explainer=...) to re-run it on perturbed inputs")
        base = check_maps(self.name, inputs, attributions).double()
        inputs = inputs.detach()
        n = inputs.shape[0]
        targets = torch.as_tensor(targets, device=inputs.device).long().reshape(-1)
        ids = sample_ids(n, context, inputs.device)
        xs = self.perturbed(model, inputs, targets, ids)                       # (S, N, C, H, W), draw-major
        flat, ts = xs.flatten(0, 1), targets.repeat(self.n_samples)
        size = self.batch_size or flat.shape[0]
        draw_ids = ids.repeat(self.n_samples)  # each perturbed copy keeps its sample's id (its explainer draws)
        maps = torch.cat([explain_samples(explainer, model, x, t, i).detach() for x, t, i in zip(flat.split(size), ts.split(size), draw_ids.split(size))])
        return xs, maps.double().view(self.n_samples, n, *base.shape[1:]), base

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        _, maps, base = self.explain_perturbed(model, inputs, targets, attributions, context)
        n = base.shape[0]
        norm = base.flatten(1).norm(dim=1)
        diff = (maps - base.unsqueeze(0)).flatten(2).norm(dim=2)   # (S, N)
        finite = torch.isfinite(norm)
        defined = finite & (norm > 0) if self.normalise else finite
        if self.normalise:
            diff = diff / norm.clamp_min(1e-300)
        nan = torch.full((n,), math.nan, dtype=torch.float64, device=base.device)
        dropped = undefined(self.name, {"non-finite attributions": ~finite, "all-zero map (normalise: true)": ~defined}, n)
        worst, mean = torch.where(defined, diff.amax(0), nan).float().cpu(), torch.where(defined, diff.mean(0), nan).float().cpu()
        if self.average:   # average sensitivity: the mean is the score, the max the extra
            return MetricResult(scores=mean, higher_is_better=False, extras={"max_sensitivity": worst}, dropped=dropped)
        return MetricResult(scores=worst, higher_is_better=False, extras={"mean_sensitivity": mean}, dropped=dropped)
