"""Smooth MPRT (Hedstroem, Weber, Lapuschkin & Hoehne, "Sanity checks revisited: an exploration to
repair the model parameter randomisation test", 2023 / 2024).

Definition: cascading model-parameter randomisation (:mod:`metrics.randomization`, all of
its conventions: layers from the logits down, seeded re-initialisation, Spearman / SSIM
similarities, a constant randomised map has similarity 0) where every explanation, the
original one included, is replaced by its average over ``n_noise`` noisy copies of the
input, x + N(0, (``noise_level`` x (max x - min x))^2) per image, seeded per (seed,
sample id, copy). Averaging removes the shattered-gradient noise that makes plain MPRT
reward noisy methods, so the test measures the dependence on the parameters alone.
The map passed in is only checked for its shape: the smoothed original is recomputed
(n_noise explanations), so the cost is n_noise x (layers + 1) explanations per sample.

``scores``: the similarity averaged over the cascade stages; lower is better; headline:
mean; ``curves`` per stage as :class:`~metrics.randomization.Randomization`.

Quantus 0.6's SmoothMPRT agrees stage by stage when given our noise and randomised models
(tests/metrics/test_quantus_reference.py), with three differences found there: its
smoothing averages ``nr_samples - 1`` noisy copies and the clean input (ours: ``n_noise``
noisy copies); inside the smoothing it ignores the ``explain_func`` passed to it and calls
``quantus.explain`` (a vanilla gradient unless a method is named); and its
``return_average_correlation`` skips a key ``"orig"`` while storing ``"original"``, so its
average includes the original's similarity with itself.
"""
from __future__ import annotations

import torch
from torch import nn

from methods.types import explain_samples
from methods.validation import check_int, check_positive
from metrics._common import check_maps, normal, sample_ids
from metrics.randomization import Randomization
from metrics.result import MetricResult


class NoiseAveraged:
    """An explainer wrapper: the mean of the explainer's maps over seeded noisy copies of the input (SmoothGrad-style)."""

    def __init__(self, explainer, n_noise: int, noise_level: float, seed: int | None, ids: torch.Tensor) -> None:
        self.explainer, self.n, self.level, self.seed, self.ids = explainer, n_noise, noise_level, seed, ids
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None   # (inputs, their noisy copies): one draw per call, reused by every stage

    def unit_noise(self, inputs: torch.Tensor) -> torch.Tensor:
        """(n_noise, N, C, H, W) seeded N(0, 1) draws, copy-major (scaled by ``noise_level`` x each image's range)."""
        n = inputs.shape[0]
        draw_ids = (self.ids.view(-1, 1) * self.n + torch.arange(self.n, device=inputs.device).view(1, -1)).flatten()
        return normal(self.seed, 41, draw_ids, tuple(inputs.shape[1:]), inputs.dtype).view(n, self.n, *inputs.shape[1:]).transpose(0, 1)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n = inputs.shape[0]
        if self.last is None or self.last[0].shape != inputs.shape or not torch.equal(self.last[0], inputs):
            spread = (inputs.flatten(1).amax(1) - inputs.flatten(1).amin(1)).view(1, -1, 1, 1, 1)
            self.last = (inputs.clone(), (inputs.unsqueeze(0) + self.unit_noise(inputs) * self.level * spread).flatten(0, 1))   # copy-major
        noisy = self.last[1].clone()   # the explainer gets its own copy, as with a fresh draw
        maps = explain_samples(self.explainer, model, noisy, targets.repeat(self.n), self.ids.repeat(self.n)).detach()  # each copy keeps its sample's id
        return maps.view(self.n, n, *maps.shape[1:]).mean(0)


class SmoothMPRT(Randomization):
    """Smooth MPRT: cascading randomisation with every map averaged over noisy copies of the input.

    Lower is better; headline: mean. ``needs`` is empty; the explainer comes from the context.

    Args:
        n_noise (int, optional): Noisy copies averaged per explanation, >= 1. Default: 8.
        noise_level (float, optional): Noise std as a fraction of each image's value range, > 0. Default: 0.1.
        **kwargs: ``similarity``, ``pooling``, ``cascade``, ``max_layers`` and ``seed`` of
            :class:`~metrics.randomization.Randomization`, documented there, with its defaults.
    """

    def __init__(self, n_noise: int = 8, noise_level: float = 0.1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_noise = check_int("smooth_mprt", "n_noise", n_noise)
        self.noise_level = check_positive("smooth_mprt", "noise_level", noise_level)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): n_noise explanations per stage and for the original."""
        return self.n_noise * ((self.max_layers or 1) + 1)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        explainer = context.get("explainer")
        if explainer is None:
            raise ValueError("smooth_mprt needs the explainer in the context (explainer=...) to re-run it on randomised models")
        check_maps("smooth_mprt", inputs, attributions)
        smooth = NoiseAveraged(explainer, self.n_noise, self.noise_level, self.seed, sample_ids(inputs.shape[0], context, inputs.device))
        targets = torch.as_tensor(targets, device=inputs.device).long().reshape(-1)
        original = smooth(model, inputs.detach(), targets)
        return super().__call__(model, inputs, targets, original, **(context | {"explainer": smooth}))
