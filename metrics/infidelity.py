"""Infidelity (Yeh, Hsieh, Suggala, Inouye & Ravikumar, NeurIPS 2019).

Definition: INFD(Phi, f, x) = E_I[(I^T Phi(x) - (f(x) - f(x - I)))^2] over random
perturbations I, here I ~ N(0, sigma^2) per input value (``noise_std``, in normalised
input units), estimated with ``n_perturbations`` draws seeded per (seed, sample id,
draw), so repeats differ from each other (unlike Quantus's default) and do not depend on
the batch. f is the target class logit (``score: logit``) or softmax probability.
``normalise: true`` rescales Phi by the least-squares optimal
beta = sum_j (I_j^T Phi)(Delta f_j) / sum_j (I_j^T Phi)^2 first (Yeh et al.'s scale-free
variant, as Captum's ``normalize``); beta is logged as the extra ``beta``. The key is spelled
``normalise`` as in max-sensitivity; the old ``normalize`` is still accepted, with a
``DeprecationWarning`` (so existing sweeps keep running), and both at once must agree.
All N * n_perturbations perturbed inputs go through the model in batches of ``batch_size``.

``scores``: INFD per sample; lower is better; headline: mean.

Quantus 0.6's Infidelity estimates the same expectation with its own perturbations (patches
replaced by a baseline, cumulatively); given our draws as its ``perturb_func`` (one per patch
position, ``n_perturb_samples=1``) it returns our values (tests/metrics/test_quantus_reference.py).
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from methods.validation import check_bool, check_choice, check_int, check_positive, check_seed
from metrics._common import check_maps, normal, sample_ids, untouched
from metrics.result import MetricResult, undefined


class Infidelity:
    """Infidelity: how badly the attributions predict the output change under random input perturbations.

    Per sample the mean over ``n_perturbations`` seeded draws I ~ N(0, noise_std^2) of
    (I^T Phi - (f(x) - f(x - I)))^2, f of the explained class; lower is better; headline: mean.
    ``needs`` is empty.

    Args:
        noise_std (float, optional): Std of the Gaussian perturbations in normalised input units, > 0.
            Default: 0.1.
        n_perturbations (int, optional): Seeded draws per sample (all different), >= 1. Default: 16.
        normalise (bool, optional): Rescale Phi by the least-squares optimal beta first (the scale-free
            variant, as Captum's ``normalize``; beta is logged as ``beta``). Default: False.
        normalize (bool or None, optional): Deprecated spelling of ``normalise`` (a warning; null: not
            given). Default: None.
        score (str, optional): f, for the target class: ``logit`` or ``softmax`` (probability).
            Default: ``logit``.
        batch_size (int or None, optional): Perturbed inputs per forward pass, >= 1; null: all at
            once. Default: 1024.
        seed (int or None, optional): The perturbation draws; null takes the run's seed (the harness
            fills it in). Default: None.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, noise_std: float = 0.1, n_perturbations: int = 16, normalise: bool = False, score: str = "logit",
                 batch_size: int | None = 1024, seed: int | None = None, normalize: bool | None = None) -> None:
        name = "infidelity"
        self.noise_std = check_positive(name, "noise_std", noise_std)
        self.n = check_int(name, "n_perturbations", n_perturbations)
        self.normalise = check_bool(name, "normalise", normalise)
        if normalize is not None:
            old = check_bool(name, "normalize", normalize)
            warnings.warn("infidelity.normalize is deprecated; use infidelity.normalise (the spelling of max_sensitivity)",
                          DeprecationWarning, stacklevel=2)
            if normalise and not old:
                raise ValueError("infidelity: normalise=true and the deprecated normalize=false disagree; give normalise only")
            self.normalise = old
        self.score = check_choice(name, "score", score, ("logit", "softmax"))
        self.batch_size = check_int(name, "batch_size", batch_size, allow_none=True)
        self.seed = check_seed(name, seed)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model in one call (for the sweep's cost estimate): the clean input and each perturbed copy."""
        return 1 + self.n

    def noise(self, inputs: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """(N, n_perturbations, C, H, W) the seeded perturbations I of each sample (id ``ids``)."""
        n = inputs.shape[0]
        draw_ids = (ids.view(-1, 1) * self.n + torch.arange(self.n, device=inputs.device).view(1, -1)).flatten()
        return normal(self.seed, 6, draw_ids, tuple(inputs.shape[1:]), inputs.dtype).view(n, self.n, *inputs.shape[1:]) * self.noise_std

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        maps = check_maps("infidelity", inputs, attributions).double()
        if maps.shape != inputs.shape:
            maps = maps.expand_as(inputs) if maps.shape[1] == 1 else maps
        inputs = inputs.detach()
        n = inputs.shape[0]
        targets = torch.as_tensor(targets, device=inputs.device).long().reshape(-1)
        noise = self.noise(inputs, sample_ids(n, context, inputs.device))
        dot = (noise.double() * maps.unsqueeze(1)).flatten(2).sum(2)                          # (N, n)
        pert = (inputs.unsqueeze(1) - noise).flatten(0, 1)
        t_all = targets.repeat_interleave(self.n)
        size = self.batch_size or pert.shape[0]
        with untouched(model), torch.no_grad():
            f_x = self._f(model(inputs), targets)
            f_p = torch.cat([self._f(model(x), t) for x, t in zip(pert.split(size), t_all.split(size))]).view(n, self.n)
        delta_f = f_x.view(-1, 1) - f_p
        extras = {}
        if self.normalise:
            beta = (dot * delta_f).sum(1) / (dot * dot).sum(1).clamp_min(1e-300)
            dot = dot * beta.view(-1, 1)
            extras["beta"] = beta.float().cpu()
        infd = ((dot - delta_f) ** 2).mean(1)
        infd = torch.where(torch.isfinite(maps).flatten(1).all(1), infd, torch.full_like(infd, math.nan))
        dropped = undefined("infidelity", {"non-finite attributions": torch.isnan(infd)}, len(infd))
        return MetricResult(scores=infd.float().cpu(), higher_is_better=False, extras=extras, dropped=dropped)

    def _f(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        out = logits.double().softmax(1) if self.score == "softmax" else logits.double()
        return out.gather(1, targets.view(-1, 1)).squeeze(1)
