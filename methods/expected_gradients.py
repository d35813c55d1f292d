"""Expected Gradients (Erion, Janizek, Sturmfels, Lundberg & Lee, Nature Machine Intelligence 2021).

Definition: EG_i(x) = E_{x' ~ D, a ~ U(0, 1)} [ (x_i - x'_i) * d f_c(x' + a (x - x')) / d x_i ], Integrated
Gradients averaged over baselines x' drawn from the data distribution D instead of one fixed baseline
(GradientSHAP is the same estimator with baselines of the user's choice, usually noise: ``gradient_shap``).
Completeness holds in expectation: E[sum_i EG_i] = f_c(x) - E_{x'}[f_c(x')]; for a linear model
f = w . x + b it is exact whenever each reference is drawn equally often: EG = w * (x - mean of the references).

Estimator (one sample = one (reference, a) pair, ``n_samples`` per image, averaged):
- the references are the data: ``background: batch`` (the default) the *other* images of the explained batch
  (an image is never its own reference, which would contribute nothing); ``background: train`` a pool of
  ``n_background`` training images drawn without replacement by seeded index (the paper's choice; the harness
  gives them, :class:`methods.types.UsesTrainingImages`, so only the pool is in memory); or, from Python, a tensor
  (M, C, H, W) of reference images;
- image i's k-th sample takes reference (o_i + k) mod M over its M candidates, from a random offset o_i, so every
  reference is used equally often when ``n_samples`` is a multiple of M (the estimate is then exact for a linear
  model); o_i and a ~ U(0, 1) are drawn per sample from (seed, sample id) (:mod:`methods.randomness`, the same on
  every device), so with a training or tensor background a map depends neither on the batch nor on the shard (the
  harness gives the test-split index as id; called without ids, the positions 0..N-1 of the call).

With ``background: batch`` an image's map depends on the other images of its batch (a batch of one is refused in
one line), so on ``eval.batch_size``; ``train`` does not. All N * n_samples points go through the model in chunks of
``internal_batch_size``.
"""
from __future__ import annotations

import torch
from torch import nn

from methods._autograd import check_batch, cpu_generator, target_gradients
from methods.model_state import frozen
from methods.randomness import call_ids, random_keys, uniform
from methods.validation import check_int, check_seed

SOURCES = ("batch", "train")
OFFSET_STREAM, ALPHA_STREAM = 109, 110  # methods.randomness streams of the reference offsets and of a


class ExpectedGradients:
    """Expected Gradients: path gradients x (x - x') averaged over references x' drawn from the data (module docstring).

    Shape (N, C, H, W). Exact on a linear model: w * (x - mean of the references) when ``n_samples`` is a multiple of
    the number of references.

    Args:
        n_samples (int, optional): (reference, a) pairs per image, one forward and backward pass each, >= 1.
            Default: 16.
        background (str or Tensor, optional): The references: ``batch`` (the other images of the explained batch;
            it needs >= 2 images and the map depends on the batch), ``train`` (``n_background`` training images
            drawn by seeded index; the harness gives them, from Python call :meth:`use_training_images`), or a
            tensor of reference images (M, C, H, W) (Python API only). None means ``batch``. Default: ``batch``.
        n_background (int, optional): Size of the ``background: train`` pool, >= 1 (all of the training split
            if it is smaller); its images are on the device during the run. Unused by the others. Default: 128.
        internal_batch_size (int or None, optional): Points per forward and backward pass, >= 1; None: all
            N * n_samples at once. Default: 512.
        seed (int or None, optional): Seed of the pool, of the per-sample reference offsets and of a; None: the
            run's seed (0 when called directly). Default: None.
    """

    seeded_per_sample = True

    def __init__(self, n_samples: int = 16, background: str | torch.Tensor | None = "batch", n_background: int = 128,
                 internal_batch_size: int | None = 512, seed: int | None = None) -> None:
        self.n_samples = check_int("expected_gradients", "n_samples", n_samples)
        self.n_background = check_int("expected_gradients", "n_background", n_background)
        self.internal_batch_size = check_int("expected_gradients", "internal_batch_size", internal_batch_size, allow_none=True)
        check_seed("expected_gradients", seed)
        background = "batch" if background is None else background
        if isinstance(background, str):
            if background not in SOURCES:
                raise ValueError(f"expected_gradients.background must be one of {', '.join(SOURCES)} or a tensor (M, C, H, W); got {background!r}")
            self.source, self.background = background, None
        elif isinstance(background, torch.Tensor) and background.dim() == 4 and background.shape[0] >= 1:
            self.source, self.background = "tensor", background
        else:
            shape = tuple(background.shape) if isinstance(background, torch.Tensor) else repr(background)
            raise ValueError(f"expected_gradients.background must be one of {', '.join(SOURCES)} or a tensor (M, C, H, W); got {shape}")
        self.seed = seed

    def training_indices(self, n_train: int) -> torch.Tensor | None:
        """The training images ``background: train`` uses (``n_background`` drawn from the seed), or None for the others."""
        if self.source != "train":
            return None
        return torch.randperm(n_train, generator=cpu_generator(self.seed))[:self.n_background].sort().values

    def use_training_images(self, images: torch.Tensor) -> None:
        """Take the images at :meth:`training_indices` as the references of ``background: train``."""
        if self.source != "train":
            raise ValueError(f"expected_gradients.background is {self.source!r}, not 'train': it uses no training images")
        if images.dim() != 4 or images.shape[0] < 1:
            raise ValueError(f"expected_gradients training images must have shape (M, C, H, W); got {tuple(images.shape)}")
        self.background = images

    def depends_on_batch(self) -> bool:
        """Whether an image's map depends on its batch (:class:`methods.types.DependsOnBatch`): with ``background: batch``."""
        return self.source == "batch"

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one forward and backward pass per sample."""
        return self.n_samples

    def draws(self, inputs: torch.Tensor, ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference indices (N, n_samples), into the background or into the batch (never the image itself), and a."""
        n, k = inputs.shape[0], self.n_samples
        ids = call_ids(inputs, ids)
        if self.source == "train" and self.background is None:
            raise ValueError("expected_gradients.background=train needs the training images: the harness gives them; "
                             "from Python call use_training_images(images) or pass background=<tensor>")
        if self.background is None and n < 2:
            raise ValueError("expected_gradients needs >= 2 images in the batch when background is batch "
                             f"(the other images are the references); got {n}")
        if self.background is not None and self.background.shape[1:] != inputs.shape[1:]:
            raise ValueError(f"expected_gradients.background images have shape {tuple(self.background.shape[1:])}; "
                             f"the inputs {tuple(inputs.shape[1:])}")
        m = self.background.shape[0] if self.background is not None else n - 1
        offset = random_keys(self.seed, OFFSET_STREAM, ids, 1) % m
        index = (offset + torch.arange(k, device=inputs.device)) % m
        if self.background is None:  # the other images: skip the image itself
            index = index + (index >= torch.arange(n, device=inputs.device).view(-1, 1)).long()
        return index, uniform(self.seed, ALPHA_STREAM, ids, (k,), inputs.dtype)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        index, alpha = self.draws(inputs, ids)
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
