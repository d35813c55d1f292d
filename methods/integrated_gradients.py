"""Integrated Gradients (Sundararajan, Taly & Yan, ICML 2017).

Definition: IG_i(x; x') = (x_i - x'_i) * integral_0^1 d f_c(x' + a (x - x')) / d x_i da,
approximated by a quadrature rule with ``n_steps`` nodes a_k and weights w_k:
IG_i ~ (x_i - x'_i) * sum_k w_k * grad_i(x' + a_k (x - x')).

Conventions (as Captum's ``IntegratedGradients``): rules ``riemann_left``,
``riemann_right``, ``riemann_middle``, ``riemann_trapezoid`` and ``gausslegendre``
(the default); the baseline x' is ``zero`` (all zeros in the model's input space,
i.e. the dataset mean for normalised data), ``uniform`` (seeded U[-1, 1] noise) or
a constant. Completeness: sum_i IG_i = f_c(x) - f_c(x') up to quadrature error.

All N * n_steps interpolated inputs go through the model in chunks of
``internal_batch_size`` (default: all at once), so memory is bounded.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from methods._autograd import check_batch, frozen, target_gradients

RULES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")
BASELINES = ("zero", "uniform")


def quadrature(rule: str, n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes in [0, 1] and weights (summing to 1) of the named rule, as float64."""
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return torch.from_numpy((nodes + 1) / 2), torch.from_numpy(weights / 2)
    if rule == "riemann_trapezoid":
        if n_steps < 2:
            raise ValueError("integrated_gradients: riemann_trapezoid needs n_steps >= 2")
        nodes = torch.linspace(0, 1, n_steps, dtype=torch.float64)
        weights = torch.full((n_steps,), 1.0 / (n_steps - 1), dtype=torch.float64)
        weights[[0, -1]] /= 2
        return nodes, weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    nodes = (torch.arange(n_steps, dtype=torch.float64) + offset) / n_steps
    return nodes, torch.full((n_steps,), 1.0 / n_steps, dtype=torch.float64)


class IntegratedGradients:
    def __init__(
        self,
        n_steps: int = 50,
        method: str = "gausslegendre",
        baseline: str | float = "zero",
        internal_batch_size: int | None = None,
        seed: int | None = None,
    ) -> None:
        if n_steps < 1:
            raise ValueError(f"integrated_gradients.n_steps must be >= 1; got {n_steps}")
        if method not in RULES:
            raise ValueError(f"integrated_gradients.method must be one of {', '.join(RULES)}; got {method!r}")
        if isinstance(baseline, str) and baseline not in BASELINES:
            raise ValueError(f"integrated_gradients.baseline must be one of {', '.join(BASELINES)} or a number; got {baseline!r}")
        if internal_batch_size is not None and internal_batch_size < 1:
            raise ValueError(f"integrated_gradients.internal_batch_size must be positive or null; got {internal_batch_size}")
        self.n_steps, self.method, self.baseline_kind = n_steps, method, baseline
        self.internal_batch_size, self.seed = internal_batch_size, seed
        self.nodes, self.weights = quadrature(method, n_steps)

    def baseline(self, inputs: torch.Tensor) -> torch.Tensor:
        """The reference input x' for each sample (used by the conservation metric)."""
        if self.baseline_kind == "zero":
            return torch.zeros_like(inputs)
        if self.baseline_kind == "uniform":
            gen = torch.Generator(device="cpu").manual_seed(0 if self.seed is None else self.seed)
            return (torch.rand(inputs.shape, generator=gen, dtype=inputs.dtype) * 2 - 1).to(inputs.device)
        return torch.full_like(inputs, float(self.baseline_kind))

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        n, steps = inputs.shape[0], self.n_steps
        base = self.baseline(inputs)
        delta = inputs - base
        nodes = self.nodes.to(inputs.device, inputs.dtype)
        weights = self.weights.to(inputs.device, inputs.dtype)
        # Flattened (step, sample) pairs, pushed through the model in large chunks.
        total = torch.zeros_like(inputs)
        chunk = self.internal_batch_size or n * steps
        with frozen(model):
            for start in range(0, n * steps, chunk):
                idx = torch.arange(start, min(start + chunk, n * steps), device=inputs.device)
                sample, step = idx % n, idx // n
                alpha = nodes[step].view(-1, 1, 1, 1)
                grads = target_gradients(model, base[sample] + alpha * delta[sample], targets[sample])
                total.index_add_(0, sample, grads * weights[step].view(-1, 1, 1, 1))
        return total * delta
