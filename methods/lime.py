"""LIME for images (Ribeiro, Singh & Guestrin, KDD 2016), with the ``lime`` package's image defaults.

``n_samples`` coalitions z in {0, 1}^M over the interpretable features
(``methods._surrogate``): the first keeps all features, the others keep each
feature with probability 1/2. Each is weighted by the exponential kernel
pi(z) = exp(-d(z)^2 / ``kernel_width``^2) of the cosine distance d(z) = 1 - sqrt(|z| / M)
to the full image, and a ridge regression (penalty ``alpha`` on the coefficients,
free intercept) of the target score on z is fitted per image; the coefficients are
the attributions. All images are fitted at once with one batched linear solve.

Output (N, 1, H, W): each pixel gets its feature's coefficient (``spread: feature``)
or coefficient / area (``spread: area``).
"""
from __future__ import annotations

import torch
from torch import nn

from methods._autograd import check_batch
from methods._surrogate import CoalitionExplainer, coalition_uniform, to_pixels
from methods.model_state import frozen
from methods.randomness import call_ids

COALITION_STREAM = 105  # methods.randomness stream of the coalitions


class LIME(CoalitionExplainer):
    """LIME: the coefficients of a weighted ridge regression of the target score on feature coalitions.

    With the ``lime`` package's image defaults (module docstring). The other arguments (``segmentation``,
    ``baseline``, ``spread``, ``score``, ``batch_size``, ``seed``, ...) are those of
    :class:`methods._surrogate.CoalitionExplainer`, passed on through ``**settings``.

    Args:
        n_samples (int, optional): Perturbed samples per image, an integer >= 2: the first keeps every
            feature, the others keep each with probability 1/2. Default: 512.
        kernel_width (float, optional): Width of the exponential kernel on the cosine distance to the full
            image, > 0 (lime's image default). Default: 0.25.
        alpha (float, optional): Ridge penalty on the coefficients (not on the intercept), >= 0 (the default
            of lime's ``Ridge``). Default: 1.0.
        **settings: The arguments of :class:`methods._surrogate.CoalitionExplainer`.
    """

    name = "lime"
    min_samples = 2

    def __init__(self, n_samples: int = 512, kernel_width: float = 0.25, alpha: float = 1.0, **settings) -> None:
        if not kernel_width > 0:
            raise ValueError(f"{self.name}.kernel_width must be > 0; got {kernel_width!r}")
        if not alpha >= 0:
            raise ValueError(f"{self.name}.alpha must be >= 0; got {alpha!r}")
        super().__init__(n_samples=n_samples, **settings)
        self.kernel_width, self.alpha = float(kernel_width), float(alpha)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        ids = call_ids(inputs, ids)
        seg, counts = self.features(inputs)
        n, m = inputs.shape[0], int(counts.max())
        real = (torch.arange(m, device=inputs.device) < counts[:, None])[:, None, :]  # (N, 1, M)
        z = coalition_uniform(self.seed, COALITION_STREAM, ids, counts, self.n_samples, m) < 0.5
        z[:, 0] = True
        z = z & real
        base = self.baseline(inputs, ids)
        with frozen(model):
            y = self.coalition_scores(model, inputs, targets, base, seg, z)
        zf = z.to(inputs.dtype)
        distance = 1 - (zf.sum(2) / counts[:, None].to(inputs.dtype)).sqrt()
        weight = torch.exp(-distance.square() / self.kernel_width**2)  # (N, P)
        design = torch.cat([zf, torch.ones_like(zf[..., :1])], dim=2)  # intercept last
        penalty = torch.cat([real.squeeze(1).to(inputs.dtype) * self.alpha + (~real.squeeze(1)).to(inputs.dtype),
                             torch.zeros(n, 1, device=inputs.device, dtype=inputs.dtype)], dim=1)
        gram = design.transpose(1, 2) @ (weight[..., None] * design) + torch.diag_embed(penalty)
        coef = torch.linalg.solve(gram, design.transpose(1, 2) @ (weight * y)[..., None]).squeeze(2)[:, :m]
        return to_pixels(coef, seg, self.spread)
