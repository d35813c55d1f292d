"""Expected Gradients (Erion, Janizek, Sturmfels, Lundberg & Lee, Nature Machine Intelligence 2021).

Definition: EG_i(x) = E_{x' ~ D, a ~ U(0, 1)} [ (x_i - x'_i) * d f_c(x' + a (x - x')) / d x_i ], Integrated
Gradients averaged over baselines x' drawn from the data distribution D instead of one fixed baseline
(GradientSHAP is the same estimator with baselines of the user's choice, usually noise: ``gradient_shap``).
Completeness holds in expectation: E[sum_i EG_i] = f_c(x) - E_{x'}[f_c(x')]; for a linear model
f = w . x + b it is exact whenever each reference is drawn equally often: EG = w * (x - mean of the references).

Estimator (one sample = one (reference, a) pair, ``n_samples`` per image, averaged):
- the references are the data: with ``background=None`` the *other* images of the explained batch (an image is
  never its own reference, which would contribute nothing); or a tensor ``background`` (M, C, H, W) of images from
  the data set (Python API, e.g. a seeded sample of the training set, the paper's choice);
- image i's k-th sample takes reference (o_i + k) mod M over its M candidates, from a seeded random offset o_i,
  so every reference is used equally often when ``n_samples`` is a multiple of M (the estimate is then exact for a
  linear model); a ~ U(0, 1) is drawn per sample from the seeded CPU generator (identical on CPU and CUDA).

With ``background=None`` an image's map depends on the other images of its batch (a batch of one is refused in one
line). All N * n_samples points go through the model in chunks of ``internal_batch_size``.
"""
from __future__ import annotations

import torch
from torch import nn

from methods._autograd import check_batch, cpu_generator, target_gradients
from methods.model_state import frozen
from methods.validation import check_int, check_seed


class ExpectedGradients:
    """Expected Gradients: path gradients x (x - x') averaged over references x' drawn from the data (module docstring).

    Shape (N, C, H, W). Exact on a linear model: w * (x - mean of the references) when ``n_samples`` is a multiple of
    the number of references.

    Args:
        n_samples (int, optional): (reference, a) pairs per image, one forward and backward pass each, >= 1.
            Default: 16.
        background (Tensor or None, optional): Reference images (M, C, H, W) from the data set (Python API only);
            None: the other images of the explained batch (the batch needs >= 2 images). Default: None.
        internal_batch_size (int or None, optional): Points per forward and backward pass, >= 1; None: all
            N * n_samples at once. Default: 512.
        seed (int or None, optional): Seed of the reference offsets and of a; None: the run's seed (0 when
            called directly). Default: None.
    """

    def __init__(self, n_samples: int = 16, background: torch.Tensor | None = None, internal_batch_size: int | None = 512,
                 seed: int | None = None) -> None:
        self.n_samples = check_int("expected_gradients", "n_samples", n_samples)
        self.internal_batch_size = check_int("expected_gradients", "internal_batch_size", internal_batch_size, allow_none=True)
        check_seed("expected_gradients", seed)
        if background is not None and (not isinstance(background, torch.Tensor) or background.dim() != 4 or background.shape[0] < 1):
            shape = tuple(background.shape) if isinstance(background, torch.Tensor) else type(background).__name__
            raise ValueError(f"expected_gradients.background must be a tensor of reference images (M, C, H, W) or None; got {shape}")
        self.background, self.seed = background, seed

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one forward and backward pass per sample."""
        return self.n_samples

    def draws(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference indices (N, n_samples), into ``background`` or into the batch (never the image itself), and a."""
        n, k = inputs.shape[0], self.n_samples
        if self.background is None and n < 2:
            raise ValueError("expected_gradients needs >= 2 images in the batch when background is None "
                             f"(the other images are the references); got {n}")
        if self.background is not None and self.background.shape[1:] != inputs.shape[1:]:
            raise ValueError(f"expected_gradients.background images have shape {tuple(self.background.shape[1:])}; "
                             f"the inputs {tuple(inputs.shape[1:])}")
        m = self.background.shape[0] if self.background is not None else n - 1
        gen = cpu_generator(self.seed)
        offset = torch.randint(m, (n, 1), generator=gen)
        index = (offset + torch.arange(k)) % m
        if self.background is None:  # the other images: skip the image itself
            index = index + (index >= torch.arange(n).view(-1, 1)).long()
        return index.to(inputs.device), torch.rand(index.shape, generator=gen, dtype=inputs.dtype).to(inputs.device)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        index, alpha = self.draws(inputs)
        pool = (self.background.to(inputs.device, inputs.dtype) if self.background is not None else inputs).detach()
        n, k = index.shape
        total = torch.zeros_like(inputs)
        chunk = self.internal_batch_size or n * k
        flat_sample = torch.arange(n, device=inputs.device).repeat_interleave(k)
        flat_ref, flat_alpha = index.flatten(), alpha.flatten().view(-1, 1, 1, 1)
        with frozen(model):
            for start in range(0, n * k, chunk):
                sample, ref = flat_sample[start:start + chunk], flat_ref[start:start + chunk]
                base = pool[ref]
                delta = inputs[sample].detach() - base
                grads = target_gradients(model, base + flat_alpha[start:start + chunk] * delta, targets[sample])
                total.index_add_(0, sample, grads * delta)
        return total / k
