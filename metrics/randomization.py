"""Cascading model-parameter randomisation (Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim,
"Sanity checks for saliency maps", NeurIPS 2018).

Definition: on a deep copy of the model, re-initialise the layers' parameters one at a
time from the logits downwards (cumulatively: after stage j the top j layers are
random), re-run the explainer (``context["explainer"]``) on the same inputs and
targets after every stage, and compare each map with the original one. A method that
depends on the model should produce dissimilar maps (gradient, Grad-CAM pass; guided
backprop fails). ``cascade: false`` randomises each layer alone instead
("independent" randomisation).

Layers: the modules that own parameters, in reverse registration order (for
sequential models: from the output towards the input); ``max_layers`` limits the
cascade. Re-initialisation: seeded N(0, s^2) with s the parameter tensor's std
(a scalar-sized or constant tensor uses its mean magnitude, at least 0.01).

Similarities (all per sample, on the channel-pooled map, ``pooling`` default sum):
``spearman`` (rank correlation of the signed maps, average ranks for ties),
``spearman_abs`` (of |map|, Adebayo's "absolute value" variant) and ``ssim``
(scikit-image ``structural_similarity`` of the |map|s min-max normalised per image to
[0, 1], data_range 1, default 7x7 window, mean over the window-valid interior). SSIM is
NumPy/CPU: :func:`batch_ssim` computes scikit-image's values with one SciPy filter per local
statistic over the whole batch per cascade stage, never per image in Python. The original
map's ranks are computed once per call, not once per stage.

``scores``: the chosen ``similarity`` averaged over the cascade stages (an area under
the cascade curve); lower is better (the maps depend on the parameters); headline:
mean. ``curves``: that similarity after each stage, ``curve_x`` = number of layers
randomised. Extras per sample: ``<similarity>_top`` (after the first stage) and
``<similarity>_final`` (all listed layers random) for all three similarities.

Constant maps (convention): a randomised map that is constant (for ``spearman_abs`` and
``ssim``: whose |map| is constant) keeps none of the original's structure, so its
similarity to a non-constant original is defined as 0 for all three similarities (a
rank correlation is otherwise 0/0). This matters: randomising the top layers often
zeroes Grad-CAM completely, and those are the samples that pass the check most clearly;
scoring them NaN dropped them from the headline and put a NaN stage into the cascade
curve. Only a constant *original* map leaves the similarity undefined: NaN at every
stage, counted in ``MetricResult.dropped`` with a warning.

On the same randomised models the ``spearman_abs`` curve equals Quantus 0.6's MPRT
(``layer_order="top_down"``) stage by stage (tests/metrics/test_quantus_reference.py).
Quantus re-initialises with each layer's default init instead of the layer's own scale, and
its ``return_average_correlation`` skips a key ``"orig"`` while storing ``"original"``, so
that average includes the original's similarity with itself (1).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from methods.types import explain_samples
from methods.validation import check_bool, check_choice, check_int, check_seed
from metrics._common import POOLINGS, check_maps, pool_channels
from metrics.result import MetricResult, undefined

SIMILARITIES = ("spearman_abs", "spearman", "ssim")


def average_ranks(v: torch.Tensor) -> torch.Tensor:
    """Row-wise ranks (0-based, float64) of (N, D) values, ties sharing their average rank.

    The sort runs in the values' own dtype (a float32 -> float64 cast keeps order and ties, so the ranks are
    the same); finite values on the CPU are sorted by NumPy's ``argsort`` (zero-copy; 2-3x faster than torch's
    CPU sort for map-sized rows), whose order among ties does not matter: tied values get one average rank."""
    n, d = v.shape
    if v.device.type == "cpu" and v.dtype in (torch.float32, torch.float64) and bool(torch.isfinite(v).all()):
        idx = torch.from_numpy(np.argsort(v.detach().numpy(), axis=1))
        sorted_v = v.gather(1, idx)
    else:
        sorted_v, idx = v.sort(1)
    new = torch.ones_like(sorted_v, dtype=torch.bool)
    new[:, 1:] = sorted_v[:, 1:] != sorted_v[:, :-1]
    group = new.long().cumsum(1) - 1
    pos = torch.arange(d, device=v.device, dtype=torch.float64).expand(n, -1)
    first = torch.full((n, d), math.inf, device=v.device, dtype=torch.float64).scatter_reduce(1, group, pos, "amin")
    last = torch.full((n, d), -math.inf, device=v.device, dtype=torch.float64).scatter_reduce(1, group, pos, "amax")
    avg = ((first + last) / 2).gather(1, group)
    return torch.empty_like(avg).scatter_(1, idx, avg)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation of (N, D) tensors in float64 (NaN for a constant row)."""
    a, b = a.double(), b.double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    den = torch.sqrt((a * a).sum(1) * (b * b).sum(1))
    return torch.where(den > 0, (a * b).sum(1) / den.clamp_min(1e-300), torch.full_like(den, math.nan))


def spearman(a: torch.Tensor, b: torch.Tensor, ranks_a: torch.Tensor | None = None) -> torch.Tensor:
    """Row-wise Spearman rank correlation of (N, D) tensors: Pearson of the average ranks (NaN for a constant row).
    ``ranks_a``: ``average_ranks(a)`` when the caller has it (a map compared with many others)."""
    return pearson(average_ranks(a) if ranks_a is None else ranks_a, average_ranks(b))


def constant_rows(v: torch.Tensor) -> torch.Tensor:
    """(N,) bool: the rows of (N, D) values that are constant (max == min)."""
    return v.amax(1) == v.amin(1)


def with_constant_convention(sim: torch.Tensor, original: torch.Tensor, randomised: torch.Tensor) -> torch.Tensor:
    """``sim`` with the module's convention: 0 where only the randomised row is constant, NaN where the original is."""
    const_o, const_r = constant_rows(original).to(sim.device), constant_rows(randomised).to(sim.device)
    sim = torch.where(const_r, torch.zeros_like(sim), sim)
    return torch.where(const_o, torch.full_like(sim, math.nan), sim)


def ssim_window(shape: tuple[int, ...], win_size: int = 7) -> int:
    """The SSIM window for maps of ``shape`` (..., H, W): ``win_size``, shrunk to the largest odd size that fits
    (below 3: no SSIM)."""
    return win_size if min(shape[-2:]) >= win_size else min(shape[-2:]) // 2 * 2 - 1


def ssim_stats(a: torch.Tensor, win_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One side's SSIM inputs of (N, H, W) maps: the min-max normalised |maps| x (float64 NumPy), their local
    means and local means of x² (SciPy ``uniform_filter``, window 1 along the batch axis)."""
    from scipy.ndimage import uniform_filter

    t = a.abs().double()
    lo, hi = t.amin((1, 2), keepdim=True), t.amax((1, 2), keepdim=True)
    x = ((t - lo) / (hi - lo).clamp_min(1e-12)).cpu().numpy()
    size = (1, win_size, win_size)
    return x, uniform_filter(x, size=size), uniform_filter(x * x, size=size)


def batch_ssim(a: torch.Tensor, b: torch.Tensor, win_size: int = 7, stats_a: tuple | None = None) -> torch.Tensor:
    """Per-image SSIM of (N, H, W) maps: scikit-image's ``structural_similarity`` (|maps| min-max normalised,
    data_range 1, uniform ``win_size`` window, sample covariance, K1 0.01, K2 0.03; Wang et al. 2004), mean
    of the SSIM map over the window-valid interior, for the whole batch at once.

    One SciPy ``uniform_filter`` per local statistic over the batch (window 1 along the batch axis), the
    formula in NumPy float64: the same per-row filters and element-wise arithmetic as one scikit-image call
    per image, so the SSIM maps are identical to its (tests/metrics/test_catalogue.py), without its per-image
    Python overhead (5 filter calls and the argument checks per image). ``stats_a``: ``ssim_stats(a,
    ssim_window(a.shape, win_size))`` when the caller has it (a map compared with many others)."""
    from scipy.ndimage import uniform_filter

    win_size = ssim_window(a.shape, win_size)
    if win_size < 3:
        return torch.full((a.shape[0],), math.nan)
    x, ux, uxx = ssim_stats(a, win_size) if stats_a is None else stats_a
    y, uy, uyy = ssim_stats(b, win_size)
    uxy = uniform_filter(x * y, size=(1, win_size, win_size))
    n_window = win_size ** 2
    cov_norm = n_window / (n_window - 1)   # sample covariance
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (0.01 * 1.0) ** 2, (0.03 * 1.0) ** 2
    full = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return torch.from_numpy(np.ascontiguousarray(full[:, pad:-pad, pad:-pad]).reshape(a.shape[0], -1).mean(1))


class Randomization:
    """Cascading parameter randomisation: how similar the maps stay as the model's layers are randomised.

    On a copy of the model the parameterised layers are re-initialised from the logits down and the
    explainer (``explainer`` in the context) is re-run after each stage; ``scores`` is the chosen
    similarity to the original map averaged over the stages; lower is better (the maps depend on the
    parameters); headline: mean. ``needs`` is empty.

    Args:
        similarity (str, optional): The similarity that gives ``scores``: ``spearman_abs`` (rank
            correlation of the |maps|), ``spearman`` (of the signed maps) or ``ssim`` (of the min-max
            normalised |maps|); all three are logged. Default: ``spearman_abs``.
        pooling (str, optional): Channel pooling before comparing: ``sum``, ``abs_sum``, ``max`` or
            ``abs_max``. Default: ``sum``.
        cascade (bool, optional): True: cumulative, from the logits down; False: each layer randomised
            alone (independent randomisation). Default: True.
        max_layers (int or None, optional): Randomise at most this many layers, from the top, >= 1;
            null: all. Default: None.
        seed (int or None, optional): The re-initialisation; null takes the run's seed (the harness
            fills it in; 0 outside it). Default: None.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, similarity: str = "spearman_abs", pooling: str = "sum", cascade: bool = True,
                 max_layers: int | None = None, seed: int | None = None) -> None:
        name = "randomization"
        self.similarity = check_choice(name, "similarity", similarity, SIMILARITIES)
        self.pooling = check_choice(name, "pooling", pooling, POOLINGS)
        self.cascade = check_bool(name, "cascade", cascade)
        self.max_layers = check_int(name, "max_layers", max_layers, allow_none=True)
        self.seed = check_seed(name, seed)

    @staticmethod
    def layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
        owners = [(n, m) for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]
        return owners[::-1]

    def _randomise(self, module: nn.Module, gen: torch.Generator) -> None:
        with torch.no_grad():
            for p in module.parameters(recurse=False):
                s = float(p.std()) if p.numel() > 1 else 0.0
                if not s > 0:
                    s = max(float(p.abs().mean()), 0.01)
                p.copy_((torch.randn(p.shape, generator=gen, dtype=torch.float64) * s).to(p))

    def stages(self, model: nn.Module, layers: list[tuple[str, nn.Module]]) -> Iterator[tuple[str, nn.Module]]:
        """``(layer name, randomised copy of the model)`` per stage: cumulative from the first of ``layers`` (``cascade``)
        or that layer alone; the copy is reused (and further randomised) by the next stage. The model is untouched."""
        gen = torch.Generator().manual_seed(0 if self.seed is None else self.seed)
        work = copy.deepcopy(model)
        modules = dict(work.named_modules())
        pristine = None if self.cascade else copy.deepcopy(model)
        for name, _ in layers:
            if not self.cascade:
                work = copy.deepcopy(pristine)
                modules = dict(work.named_modules())
            self._randomise(modules[name], gen)
            yield name, work

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model in one call (for the sweep's cost estimate): one re-explanation
        per randomised layer, counted as one pass each; the layer count is ``max_layers`` (the model is not
        built yet; without a cap counted as 1)."""
        return self.max_layers or 1

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        explainer = context.get("explainer")
        if explainer is None:
            raise ValueError("randomization needs the explainer in the context (explainer=...) to re-run it on randomised models")
        original = pool_channels(check_maps("randomization", inputs, attributions), self.pooling)
        layers = self.layers(model)[: self.max_layers]
        if not layers:
            raise ValueError("randomization: the model has no parameters to randomise")
        sims = {k: [] for k in SIMILARITIES}
        flat_o = original.flatten(1)
        abs_o = flat_o.abs()
        ranks_o, ranks_abs_o = average_ranks(flat_o), average_ranks(abs_o)   # once, not once per stage
        window = ssim_window(original.shape)
        stats_o = ssim_stats(original, window) if window >= 3 else None
        for _, work in self.stages(model, layers):
            maps = explain_samples(explainer, work, inputs, targets, context.get("indices"))
            pooled = pool_channels(check_maps("randomization", inputs, maps), self.pooling)
            flat_r = pooled.flatten(1)
            sims["spearman"].append(with_constant_convention(spearman(flat_o, flat_r, ranks_o).cpu(), flat_o, flat_r))
            abs_r = flat_r.abs()
            sims["spearman_abs"].append(with_constant_convention(spearman(abs_o, abs_r, ranks_abs_o).cpu(), abs_o, abs_r))
            ssim = batch_ssim(original, pooled, stats_a=stats_o).to(torch.float64)  # batched, the original's side once
            sims["ssim"].append(with_constant_convention(ssim, abs_o, abs_r))
        curves = {k: torch.stack(v, 1).float() for k, v in sims.items()}
        extras = {}
        for k, c in curves.items():
            extras[f"{k}_top"], extras[f"{k}_final"] = c[:, 0], c[:, -1]
        main = curves[self.similarity]
        flat = original.flatten(1)
        const = constant_rows(flat.abs() if self.similarity != "spearman" else flat).cpu()
        reasons = {"constant original map": const, "non-finite map or map smaller than the SSIM window": main.isnan().any(1) & ~const}
        dropped = undefined("randomization", reasons, len(main))
        return MetricResult(scores=main.mean(1), higher_is_better=False, curves=main,
                            curve_x=torch.arange(1, len(layers) + 1, dtype=torch.float32), extras=extras, dropped=dropped)
