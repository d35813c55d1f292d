"""Random logit test (Sixt, Granz & Landgraf, "When explanations lie: why many modified BP
attributions fail", ICML 2020).

Definition: explain the same input for a different class, drawn at random among the
other classes, and compare with the explanation of the target class: a class-sensitive
method gives dissimilar maps; methods whose maps do not depend on the explained logit
(Sixt et al. show this for several modified backpropagation rules) give similar ones.
The other class is c' = (c + 1 + floor(u (K - 1))) mod K with u ~ U(0, 1) seeded per
(seed, sample id), K the number of logits. Similarities as
:mod:`metrics.randomization`: ``ssim`` (default, as Quantus), ``spearman_abs`` or
``spearman`` of the channel-pooled maps, all three logged; a constant map for c' has
similarity 0 to a non-constant original (same convention). The explainer
(``context["explainer"]``) is re-run once per sample, for c'.

``scores``: the similarity per sample; lower is better; headline: mean. NaN where the
original map is constant (counted in ``MetricResult.dropped``). Extra
``other_class``: c'.

With the same other class, ``spearman`` and ``spearman_abs`` equal Quantus 0.6's RandomLogit
with ``correlation_spearman`` (signed / ``abs=True``). Its default SSIM is a 1-D SSIM of the
raster-flattened maps (windows run across row ends), ours the 2-D SSIM of the maps.
"""
from __future__ import annotations

import torch
from torch import nn

from methods.types import explain_samples
from methods.validation import check_choice, check_seed
from metrics._common import POOLINGS, check_maps, pool_channels, sample_ids, uniform, untouched
from metrics.randomization import SIMILARITIES, batch_ssim, constant_rows, spearman, with_constant_convention
from metrics.result import MetricResult, undefined


def similarities(original: torch.Tensor, other: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample ``spearman``, ``spearman_abs`` and ``ssim`` of two (N, H, W) pooled maps, with the constant-map convention."""
    flat_o, flat_r = original.flatten(1), other.flatten(1)
    abs_o, abs_r = flat_o.abs(), flat_r.abs()
    return {
        "spearman": with_constant_convention(spearman(flat_o, flat_r).cpu(), flat_o, flat_r),
        "spearman_abs": with_constant_convention(spearman(abs_o, abs_r).cpu(), abs_o, abs_r),
        "ssim": with_constant_convention(batch_ssim(original, other).double(), abs_o, abs_r),
    }


class RandomLogit:
    """Random logit test: the similarity between the maps for the target class and for a random other class.

    Lower is better; headline: mean. ``needs`` is empty; the explainer comes from the context.

    Args:
        similarity (str, optional): ``ssim`` (min-max normalised |maps|, as Quantus), ``spearman_abs`` or
            ``spearman``; all three are logged. Default: ``ssim``.
        pooling (str, optional): Channel pooling: ``sum``, ``abs_sum``, ``max`` or ``abs_max``. Default: ``sum``.
        seed (int or None, optional): The other class; null takes the run's seed. Default: None.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, similarity: str = "ssim", pooling: str = "sum", seed: int | None = None) -> None:
        self.similarity = check_choice("random_logit", "similarity", similarity, SIMILARITIES)
        self.pooling = check_choice("random_logit", "pooling", pooling, POOLINGS)
        self.seed = check_seed("random_logit", seed)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one forward pass and one re-explanation."""
        return 2

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        explainer = context.get("explainer")
        if explainer is None:
            raise ValueError("random_logit needs the explainer in the context (explainer=...) to explain another class")
        original = pool_channels(check_maps("random_logit", inputs, attributions), self.pooling)
        n = inputs.shape[0]
        targets = torch.as_tensor(targets, device=inputs.device).long().reshape(-1)
        with untouched(model), torch.no_grad():
            k = model(inputs[:1].detach()).shape[1]
        if k < 2:
            raise ValueError(f"random_logit needs a model with at least 2 classes; this one has {k}")
        u = uniform(self.seed, 40, sample_ids(n, context, inputs.device), (1,), torch.float64).view(-1)
        other = (targets + 1 + (u * (k - 1)).long().clamp(max=k - 2)) % k
        maps = explain_samples(explainer, model, inputs.detach(), other, sample_ids(n, context, inputs.device))
        maps = pool_channels(check_maps("random_logit", inputs, maps), self.pooling)
        sims = similarities(original, maps)
        flat = original.flatten(1)
        const = constant_rows(flat.abs() if self.similarity != "spearman" else flat).cpu()
        dropped = undefined("random_logit", {"constant original map": const}, n)
        extras = {k: v.float() for k, v in sims.items()} | {"other_class": other.float().cpu()}
        return MetricResult(scores=sims[self.similarity].float(), higher_is_better=False, extras=extras, dropped=dropped)
