"""SmoothGrad and its variants (Smilkov et al. 2017; Adebayo et al. 2018).

For a wrapped gradient-type explainer E and noise eps_s ~ N(0, sigma^2),
sigma = ``noise_level`` * (max x - min x) per image (the paper's convention):
- ``mean``:    A = 1/S sum_s E(x + eps_s)               (SmoothGrad)
- ``squared``: A = 1/S sum_s E(x + eps_s)^2             (SmoothGrad-squared)
- ``vargrad``: A = 1/S sum_s E(x + eps_s)^2 - mean^2    (VarGrad, population variance)
matching Captum's ``NoiseTunnel`` variants smoothgrad / smoothgrad_sq / vargrad.

The wrapped explainer is any explainer of this package (in YAML a nested node with
its own ``_target_``; default: the signed gradient). All N * ``n_samples`` noisy
images go to it in chunks of ``batch_size`` (all at once when null). The noise comes
from a CPU generator seeded with ``seed`` (null -> 0) and is moved to the device.
"""
from __future__ import annotations

import torch
from torch import nn

from methods._autograd import check_batch, cpu_generator
from methods.gradient import Gradient
from methods.validation import check_int, check_seed

VARIANTS = ("mean", "squared", "vargrad")


class SmoothGrad:
    """SmoothGrad, SmoothGrad-squared and VarGrad: a wrapped explainer's maps over noisy copies of the input.

    Gaussian noise of std ``noise_level`` * (max x - min x) per image (the paper's convention), combined as
    Captum's ``NoiseTunnel`` variants smoothgrad, smoothgrad_sq and vargrad. The map has the wrapped
    explainer's shape. Each noise draw has its own generator, so the noise does not depend on ``batch_size``.

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

    def _noise(self, draw: int, inputs: torch.Tensor) -> torch.Tensor:
        gen = cpu_generator((0 if self.seed is None else self.seed) * 1_000_003 + draw)
        return torch.randn(inputs.shape, generator=gen, dtype=inputs.dtype).to(inputs.device)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): the inner explainer's passes for each noisy copy."""
        return self.n_samples * self.explainer.forward_passes_per_sample(shape)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        n, total = inputs.shape[0], inputs.shape[0] * self.n_samples
        span = inputs.amax(dim=(1, 2, 3), keepdim=True) - inputs.amin(dim=(1, 2, 3), keepdim=True)
        sigma = self.noise_level * span
        chunk = self.batch_size or total
        sums = squares = None
        # Flattened (noise draw, image) pairs: index i is draw i // n of image i % n. Draw d's noise for the
        # whole batch comes from its own generator, so the result does not depend on batch_size.
        for start in range(0, total, chunk):
            stop = min(start + chunk, total)
            idx = torch.arange(start, stop, device=inputs.device)
            sample, first = idx % n, start // n
            draws = range(first, (stop - 1) // n + 1)
            noise = torch.cat([self._noise(d, inputs) for d in draws])[idx - first * n]
            maps = self.explainer(model, inputs[sample] + sigma[sample] * noise, targets[sample])
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
