"""SmoothGrad and its variants (Smilkov et al. 2017; Adebayo et al. 2018).

For a wrapped gradient-type explainer E and noise eps_s ~ N(0, sigma^2),
sigma = ``noise_level`` * (max x - min x) per image (the paper's convention):
- ``mean``:    A = 1/S sum_s E(x + eps_s)               (SmoothGrad)
- ``squared``: A = 1/S sum_s E(x + eps_s)^2             (SmoothGrad-squared)
- ``vargrad``: A = 1/S sum_s E(x + eps_s)^2 - mean^2    (VarGrad, population variance)
matching Captum's ``NoiseTunnel`` variants smoothgrad / smoothgrad_sq / vargrad.

The wrapped explainer is any explainer of this package (in YAML a nested node with
its own ``_target_``; default: the signed gradient). All N * ``n_samples`` noisy
images go to it in chunks of ``batch_size`` (all at once when null). The noise of
draw d of a sample is drawn from (``seed``, sample id, d) (:mod:`methods.randomness`; null
seed -> 0), on the inputs' device: a sample's map depends neither on ``batch_size`` nor on the
other samples of its batch (the harness gives the test-split index as id; called without ids, the
sample's position 0..N-1 in the call).
"""
from __future__ import annotations

import torch
from torch import nn

from methods._autograd import check_batch
from methods.gradient import Gradient
from methods.randomness import call_ids, normal_at
from methods.types import explain_samples
from methods.validation import check_int, check_seed

VARIANTS = ("mean", "squared", "vargrad")
NOISE_STREAM = 102  # methods.randomness stream of the noise


class SmoothGrad:
    """SmoothGrad, SmoothGrad-squared and VarGrad: a wrapped explainer's maps over noisy copies of the input.

    Gaussian noise of std ``noise_level`` * (max x - min x) per image (the paper's convention), combined as
    Captum's ``NoiseTunnel`` variants smoothgrad, smoothgrad_sq and vargrad. The map has the wrapped
    explainer's shape. Each sample's noise is drawn from (seed, its id, draw), so it depends neither on ``batch_size``
    nor on the batch (:class:`methods.types.PerSampleSeeded`: ``ids=`` gives the ids, default 0..N-1).

    Args:
        explainer (Explainer or None, optional): The wrapped explainer: any explainer of this package (in
            YAML a nested node with its own ``_target_`` and arguments, e.g. ``methods.saliency.Saliency``,
            ``methods.gradient.GradientXInput`` or ``methods.guided_backprop.GuidedBackprop``). None: the
            signed gradient, :class:`methods.gradient.Gradient` (the YAML names it). Default: None.
        variant (str, optional): ``mean`` (SmoothGrad: the mean map), ``squared`` (SmoothGrad-squared: the
            mean of the squared maps) or ``vargrad`` (VarGrad: their population variance). Default: ``mean``.
        n_samples (int, optional): Noisy copies per image, an integer >= 1. Default: 50.
        noise_level (float, optional): Noise std as a fraction of each image's value range (max - min),
            >= 0. Default: 0.15.
        batch_size (int or None, optional): Noisy images per call of the wrapped explainer, an integer >= 1;
            None: all N * n_samples at once. Default: 512.
        seed (int or None, optional): Seed of the noise; None takes the run's seed (the harness fills it in;
            0 when called directly). Default: None.
    """

    def __init__(
        self,
        explainer=None,
        variant: str = "mean",
        n_samples: int = 50,
        noise_level: float = 0.15,
        batch_size: int | None = 512,
        seed: int | None = None,
    ) -> None:
        if explainer is not None and not callable(explainer):
            raise ValueError(f"smoothgrad.explainer must be an explainer (a callable or a node with _target_); got {explainer!r}")
        if variant not in VARIANTS:
            raise ValueError(f"smoothgrad.variant must be one of {', '.join(VARIANTS)}; got {variant!r}")
        check_int("smoothgrad", "n_samples", n_samples)
        if not noise_level >= 0:
            raise ValueError(f"smoothgrad.noise_level must be >= 0; got {noise_level}")
        check_int("smoothgrad", "batch_size", batch_size, allow_none=True)
        check_seed("smoothgrad", seed)
        self.explainer = explainer if explainer is not None else Gradient()
        self.variant, self.n_samples, self.noise_level = variant, n_samples, float(noise_level)
        self.batch_size, self.seed = batch_size, seed

    seeded_per_sample = True

    def _noise(self, ids: torch.Tensor, draws: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """N(0, 1) noise (B, C, H, W) of draw ``draws[b]`` of the sample with id ``ids[b]`` (random id ids * n_samples + draw)."""
        counters = torch.arange(inputs[0].numel(), device=inputs.device)
        return normal_at(self.seed, NOISE_STREAM, ids * self.n_samples + draws, counters, inputs.dtype).view(-1, *inputs.shape[1:])

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): the inner explainer's passes for each noisy copy."""
        return self.n_samples * self.explainer.forward_passes_per_sample(shape)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        ids = call_ids(inputs, ids)
        n, total = inputs.shape[0], inputs.shape[0] * self.n_samples
        span = inputs.amax(dim=(1, 2, 3), keepdim=True) - inputs.amin(dim=(1, 2, 3), keepdim=True)
        sigma = self.noise_level * span
        chunk = self.batch_size or total
        sums = squares = None
        # Flattened (noise draw, image) pairs: index i is draw i // n of image i % n; each pair's noise comes
        # from (seed, the image's id, the draw), so the result depends neither on batch_size nor on the batch.
        for start in range(0, total, chunk):
            idx = torch.arange(start, min(start + chunk, total), device=inputs.device)
            sample = idx % n
            noise = self._noise(ids[sample], idx // n, inputs)
            maps = explain_samples(self.explainer, model, inputs[sample] + sigma[sample] * noise, targets[sample], ids[sample])
            if sums is None:
                sums = maps.new_zeros((n, *maps.shape[1:]))
                squares = torch.zeros_like(sums)
            sums.index_add_(0, sample, maps)
            if self.variant != "mean":
                squares.index_add_(0, sample, maps.square())
        mean = sums / self.n_samples
        if self.variant == "mean":
            return mean
        if self.variant == "squared":
            return squares / self.n_samples
        return squares / self.n_samples - mean.square()
