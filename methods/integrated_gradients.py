"""Integrated Gradients (Sundararajan, Taly & Yan, ICML 2017).

Definition: IG_i(x; x') = (x_i - x'_i) * integral_0^1 d f_c(x' + a (x - x')) / d x_i da,
approximated by a quadrature rule with ``n_steps`` nodes a_k and weights w_k:
IG_i ~ (x_i - x'_i) * sum_k w_k * grad_i(x' + a_k (x - x')).

Conventions (as Captum's ``IntegratedGradients``): rules ``riemann_left``,
``riemann_right``, ``riemann_middle``, ``riemann_trapezoid`` and ``gausslegendre``
(the default). The baseline x' is any spec of ``methods.baselines`` (zero, mean,
blur, uniform noise, a number or a tensor) and is exposed as ``baseline(inputs)``.
Completeness: sum_i IG_i = f_c(x) - f_c(x') up to quadrature error. A rule with a
node at a = 0 (riemann_left, trapezoid) evaluates the gradient at the baseline
itself, where a bias-free ReLU net has all pre-activations 0 and zero gradient.

All N * n_steps interpolated inputs go through the model in chunks of
``internal_batch_size`` (default: all at once), so memory is bounded.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from methods._autograd import check_batch
from methods._path import path_gradients
from methods.baselines import Baseline
from methods.model_state import frozen
from methods.validation import check_int

# Gauss-Legendre nodes come from an n_steps x n_steps eigenproblem; 4096 steps (134 MB) is far past any published setting.
MAX_STEPS = 4096
RULES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def quadrature(rule: str, n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes in [0, 1] and weights (summing to 1) of the named rule, as float64."""
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return torch.from_numpy((nodes + 1) / 2), torch.from_numpy(weights / 2)
    if rule == "riemann_trapezoid":
        nodes = torch.linspace(0, 1, n_steps, dtype=torch.float64)
        weights = torch.full((n_steps,), 1.0 / (n_steps - 1), dtype=torch.float64)
        weights[[0, -1]] /= 2
        return nodes, weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    nodes = (torch.arange(n_steps, dtype=torch.float64) + offset) / n_steps
    return nodes, torch.full((n_steps,), 1.0 / n_steps, dtype=torch.float64)


class IntegratedGradients:
    """Integrated Gradients: the input gradients integrated along the straight path from a baseline x'.

    IG = (x - x') * integral_0^1 grad f_c(x' + a (x - x')) da by a quadrature rule, with Captum's
    conventions; sum(IG) = f_c(x) - f_c(x') up to quadrature error. ``baseline(inputs)`` returns x'.
    Shape (N, C, H, W).

    Args:
        n_steps (int, optional): Number of quadrature nodes along the path from the baseline to the input;
            one forward and backward pass each. An integer in [1, 4096] (>= 2 for ``riemann_trapezoid``).
            Default: 50.
        method (str, optional): Quadrature rule: ``riemann_left``, ``riemann_right``, ``riemann_middle``,
            ``riemann_trapezoid`` or ``gausslegendre``. Default: ``gausslegendre``.
        baseline (str, float or Tensor, optional): The reference input x':
            ``zero``, ``mean``, ``blur`` or ``uniform`` (defined in :mod:`methods.baselines`), a number,
            or a tensor (a nested list in YAML) broadcastable to (N, C, H, W). Default: ``zero``.
        blur_sigma (float, optional): Std in pixels of the Gaussian for ``baseline=blur``, > 0. Default: 5.0.
        internal_batch_size (int or None, optional): Interpolated images per forward and backward pass, an
            integer >= 1; None: all N * n_steps at once. Default: 512.
        seed (int or None, optional): Seed of ``baseline=uniform``'s noise; None takes the run's seed (the
            harness fills it in; 0 when called directly). Default: None.
    """

    def __init__(
        self,
        n_steps: int = 50,
        method: str = "gausslegendre",
        baseline="zero",
        blur_sigma: float = 5.0,
        internal_batch_size: int | None = 512,
        seed: int | None = None,
    ) -> None:
        check_int("integrated_gradients", "n_steps", n_steps, maximum=MAX_STEPS)
        if method not in RULES:
            raise ValueError(f"integrated_gradients.method must be one of {', '.join(RULES)}; got {method!r}")
        if method == "riemann_trapezoid" and n_steps < 2:
            raise ValueError(f"integrated_gradients.n_steps must be >= 2 for riemann_trapezoid; got {n_steps}")
        check_int("integrated_gradients", "internal_batch_size", internal_batch_size, allow_none=True)
        self.n_steps, self.method = n_steps, method
        self.internal_batch_size, self.seed = internal_batch_size, seed
        self.baseline = Baseline(baseline, "integrated_gradients", seed, blur_sigma)
        self.nodes, self.weights = quadrature(method, n_steps)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one forward and backward pass per quadrature node."""
        return self.n_steps

    seeded_per_sample = True  # baseline=uniform's noise is drawn from (seed, sample id)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        base = self.baseline(inputs, ids)
        with frozen(model):
            total = path_gradients(model, inputs, targets, base, self.nodes, self.weights, self.internal_batch_size)
        return total * (inputs - base)
