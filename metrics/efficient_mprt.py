"""Efficient MPRT (Hedstroem, Weber, Lapuschkin & Hoehne, "Sanity checks revisited: an exploration
to repair the model parameter randomisation test", XAI in Action workshop, NeurIPS 2023 / 2024).

Definition: instead of comparing maps layer by layer (MPRT, :mod:`metrics.randomization`),
randomise all parameterised layers at once and compare the *complexity* of the
explanation before and after:
  eMPRT = H(Phi(x; f_random)) / H(Phi(x; f)),
with H the Shannon entropy (natural log) of an ``n_bins`` histogram of the channel-pooled
map's values (range: that map's min..max). A map that depends on the parameters loses its
structure under randomisation and becomes more complex, so eMPRT > 1 passes; about 1 means
the map ignores the parameters. The re-initialisation is :class:`Randomization`'s (seeded
N(0, s^2) per tensor, s its std). One re-explanation per sample.

Conventions: a constant map has entropy 0; a constant randomised map gives 0 (it lost
all structure but is not more complex: the ratio counts it as failing, not passing, and the
extra ``constant_after`` flags it); a constant original map leaves the ratio undefined (NaN,
counted in ``MetricResult.dropped``). Extras: ``entropy_before``, ``entropy_after``.

``scores``: eMPRT per sample; higher is better; headline: mean. On the same randomised model
Quantus 0.6's EfficientMPRT returns (H_after - H_before) / H_before = eMPRT - 1 (its extra
``scores_fraction_explanation`` is eMPRT); see tests/metrics/test_quantus_reference.py.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.types import explain_samples
from methods.validation import check_choice, check_int, check_seed
from metrics._common import POOLINGS, check_maps, pool_channels
from metrics.randomization import Randomization
from metrics.result import MetricResult, undefined


def histogram_entropy(maps: torch.Tensor, n_bins: int) -> torch.Tensor:
    """(N,) Shannon entropy of an ``n_bins`` histogram of each (H, W) map's values over its own min..max (0 if constant)."""
    flat = maps.flatten(1).double()
    lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    bins = ((flat - lo) / (hi - lo).clamp_min(1e-300) * n_bins).long().clamp(0, n_bins - 1)
    counts = torch.zeros(flat.shape[0], n_bins, dtype=torch.float64, device=flat.device).scatter_add_(1, bins, torch.ones_like(flat))
    p = counts / flat.shape[1]
    h = -torch.where(p > 0, p * p.clamp_min(1e-300).log(), torch.zeros_like(p)).sum(1)
    return torch.where((hi > lo).squeeze(1), h, torch.zeros_like(h))


class EfficientMPRT:
    """Efficient MPRT: the entropy of the map after randomising every layer over its entropy before.

    Higher is better (> 1: the explanation depends on the parameters); headline: mean. ``needs`` is
    empty; the explainer comes from the context.

    Args:
        n_bins (int, optional): Histogram bins of the entropy, >= 2. Default: 100.
        pooling (str, optional): Channel pooling: ``sum``, ``abs_sum``, ``max`` or ``abs_max``. Default: ``sum``.
        seed (int or None, optional): The re-initialisation; null takes the run's seed. Default: None.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, n_bins: int = 100, pooling: str = "sum", seed: int | None = None) -> None:
        self.n_bins = check_int("efficient_mprt", "n_bins", n_bins, minimum=2)
        self.pooling = check_choice("efficient_mprt", "pooling", pooling, POOLINGS)
        self.seed = check_seed("efficient_mprt", seed)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one re-explanation on the randomised model."""
        return 1

    def randomised(self, model: nn.Module) -> nn.Module:
        """A copy of the model with every parameterised layer re-initialised (:class:`Randomization`'s cascade, all stages)."""
        randomiser = Randomization(seed=self.seed)
        layers = randomiser.layers(model)
        if not layers:
            raise ValueError("efficient_mprt: the model has no parameters to randomise")
        *_, (_, work) = randomiser.stages(model, layers)   # the last stage: every layer randomised
        return work

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        explainer = context.get("explainer")
        if explainer is None:
            raise ValueError("efficient_mprt needs the explainer in the context (explainer=...) to re-run it on the randomised model")
        before = pool_channels(check_maps("efficient_mprt", inputs, attributions), self.pooling)
        after = pool_channels(check_maps("efficient_mprt", inputs, explain_samples(explainer, self.randomised(model), inputs.detach(), targets,
                                                                                 context.get("indices"))), self.pooling)
        h0, h1 = histogram_entropy(before, self.n_bins), histogram_entropy(after, self.n_bins)
        finite = torch.isfinite(before.flatten(1)).all(1) & torch.isfinite(after.flatten(1)).all(1)
        const = h0 == 0
        ratio = torch.where(finite & ~const, h1 / h0.clamp_min(1e-300), torch.full_like(h0, math.nan))
        dropped = undefined("efficient_mprt", {"non-finite map": ~finite, "constant original map": const}, len(ratio))
        after_flat = after.flatten(1)
        extras = {"entropy_before": h0.float().cpu(), "entropy_after": h1.float().cpu(),
                  "constant_after": (after_flat.amax(1) == after_flat.amin(1)).float().cpu()}
        return MetricResult(scores=ratio.float().cpu(), higher_is_better=True, extras=extras, dropped=dropped)
