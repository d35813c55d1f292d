"""KernelSHAP (Lundberg & Lee, NeurIPS 2017).

Shapley values phi_j of the M interpretable features (``methods._surrogate``) for
the set function v(S) = f_c(x with the features outside S set to the baseline):
the solution of the weighted least-squares problem over coalitions z with the
Shapley kernel pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|)), subject to
phi_0 = v(empty) and sum_j phi_j = v(all) - v(empty) (efficiency). We sample
``n_samples`` coalitions with probability proportional to pi (size s with
p(s) ~ (M - 1) / (s (M - s)), then a uniform subset of that size), so the
regression is unweighted, and eliminate the efficiency constraint by substitution.
For an additive v the result is exact once the sampled design has full rank.

Output (N, 1, H, W): each pixel gets its feature's phi (``spread: feature``, Captum's
convention) or phi / area (``spread: area``, so the map sums to f(x) - f(baseline)).
"""
from __future__ import annotations

import torch
from torch import nn

from methods._autograd import check_batch
from methods._perturbation import target_scores
from methods._surrogate import CoalitionExplainer, coalition_uniform, to_pixels
from methods.model_state import frozen
from methods.randomness import call_ids, uniform

SIZE_STREAM, SUBSET_STREAM = 106, 107  # methods.randomness streams of the coalition sizes and subsets


class KernelSHAP(CoalitionExplainer):
    """KernelSHAP: Shapley values of superpixels or patches, by regression on Shapley-kernel coalitions.

    The estimator is in the module docstring; ``n_samples`` coalitions per image are drawn from the Shapley
    kernel. Efficiency holds by construction: the values sum to f_c(x) - f_c(baseline), and with
    ``spread=area`` so does the map. Arguments: those of :class:`methods._surrogate.CoalitionExplainer`.
    """

    name = "kernel_shap"

    def _coalitions(self, counts: torch.Tensor, m: int, ids: torch.Tensor) -> torch.Tensor:
        """(N, P, M) bool coalitions sampled from the Shapley kernel of each image's feature count, per image from (seed, id)."""
        counts = counts.to(ids.device)
        sizes = torch.arange(1, max(m, 2), dtype=torch.float64, device=ids.device)
        weights = (counts[:, None] - 1) / (sizes * (counts[:, None] - sizes))
        weights = torch.where((sizes < counts[:, None]) & (weights > 0), weights, torch.zeros_like(weights))
        weights[weights.sum(1) == 0, 0] = 1.0  # a single feature: any coalition size is degenerate
        cdf = weights.cumsum(1) / weights.sum(1, keepdim=True)
        cdf = torch.where(sizes >= counts[:, None] - 1, 1.0, cdf)  # exactly 1 from the largest size M_n - 1 on: never beyond it
        u = uniform(self.seed, SIZE_STREAM, ids, (self.n_samples,), torch.float64)
        size = torch.searchsorted(cdf, u).clamp(max=cdf.shape[1] - 1) + 1  # (N, P): inverse-CDF draw of the size
        noise = coalition_uniform(self.seed, SUBSET_STREAM, ids, counts, self.n_samples, m)
        noise = noise.masked_fill(torch.arange(m, device=ids.device) >= counts[:, None, None], 2.0)  # padding is never chosen
        rank = noise.argsort(dim=2).argsort(dim=2)
        return rank < size[..., None]

    def attributions(self, model, inputs, targets, ids=None):
        """Shapley values (N, M), feature ids (N, H, W) and feature counts (N,); ``ids`` seed each image's coalitions."""
        targets = check_batch(inputs, targets)
        ids = call_ids(inputs, ids)
        seg, counts = self.features(inputs)
        m = int(counts.max())
        z = self._coalitions(counts, m, ids)
        base = self.baseline(inputs, ids)
        with frozen(model):
            y = self.coalition_scores(model, inputs, targets, base, seg, z)
            full = target_scores(model, inputs, targets, self.score)
            empty = target_scores(model, base, targets, self.score)
        return self.solve(z.to(inputs.dtype), y, empty, full, counts), seg, counts

    @staticmethod
    def solve(z, y, empty, full, counts):
        n, p, m = z.shape
        total = (full - empty)[:, None]
        last = (counts - 1).view(n, 1, 1).expand(n, p, 1)
        z_last = z.gather(2, last)  # (N, P, 1)
        features = torch.arange(m, device=z.device)
        free = (features < (counts - 1)[:, None]).to(z.dtype)  # (N, M): all real features but the last
        design = (z - z_last) * free[:, None, :]
        target = (y - empty[:, None]) - z_last.squeeze(2) * total
        gram = design.transpose(1, 2) @ design + torch.diag_embed(1.0 - free)
        phi = (torch.linalg.pinv(gram) @ (design.transpose(1, 2) @ target[..., None])).squeeze(2) * free
        return phi.scatter(1, (counts - 1).view(n, 1), total - phi.sum(1, keepdim=True))

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        phi, seg, _ = self.attributions(model, inputs, targets, ids)
        return to_pixels(phi, seg, self.spread)
