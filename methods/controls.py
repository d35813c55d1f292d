"""Control "explanations" that every comparison table should include.

- ``Random``: i.i.d. uniform U(0, 1) noise of shape (N, 1, H, W), drawn per sample from
  (``seed``, sample id) (:mod:`methods.randomness`; null seed -> 0), independent of model and
  input: every sample of a run gets its own map, whatever the batch (the harness gives the
  test-split index as id; called without ids, the positions 0..N-1 of the call).
  A metric that cannot tell a method from this map says little about the method.
- ``Constant``: ``value`` at every pixel, shape (N, 1, H, W): the map with no
  information at all; ranking metrics see only ties (their tie-breaking), so its scores
  are what a metric gives a method that says nothing.
- ``Sobel``: the input's edge map, independent of the model (Adebayo et al. 2018
  show several saliency methods resemble it). Definition as scikit-image's
  ``filters.sobel``: on the channel mean g of each image, with the 3x3 kernels
  h = [1, 2, 1]^T [1, 0, -1] / 4 and its transpose and edge-replicating borders
  (scipy's ``reflect`` mode for a 3x3 stencil), M = sqrt((g*h)^2 + (g*h^T)^2) / sqrt(2).
  Computed with one conv2d on the inputs' device; tests compare it to scikit-image.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from methods._autograd import check_batch
from methods.randomness import call_ids, uniform
from methods.validation import check_seed

NOISE_STREAM = 108  # methods.randomness stream of the random map


class Random:
    """Control map: seeded uniform noise U(0, 1), independent of the model and the input.

    Shape (N, 1, H, W); each sample's map is drawn from the seed and its id (``ids=``; 0..N-1 when called without).
    A metric that cannot tell a method from this map says little about the method.

    Args:
        seed (int or None, optional): Seed of the noise; None takes the run's seed (the harness fills it in;
            0 when called directly). Default: None.
    """

    seeded_per_sample = True

    def __init__(self, seed: int | None = None) -> None:
        check_seed("random", seed)
        self.seed = seed

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): none, a control map never runs the model."""
        return 0

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(inputs, targets)
        return uniform(self.seed, NOISE_STREAM, call_ids(inputs, ids), (1, *inputs.shape[-2:]), inputs.dtype)


class Constant:
    """Control map: the same value everywhere, independent of the model and the input.

    Shape (N, 1, H, W). Every pixel ties, so a metric's score for it is its tie-breaking's, not a method's.

    Args:
        value (float, optional): The map's value, a finite number. Default: 1.0.
    """

    def __init__(self, value: float = 1.0) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"constant.value must be a finite number; got {value!r}")
        self.value = float(value)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): none, a control map never runs the model."""
        return 0

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        check_batch(inputs, targets)
        n, _, h, w = inputs.shape
        return torch.full((n, 1, h, w), self.value, dtype=inputs.dtype, device=inputs.device)


class Sobel:
    """Control map: the input's Sobel edge map (scikit-image's definition), independent of the model.

    Shape (N, 1, H, W); the definition is in the module docstring.

    Args:
        None. The edge map has no settings.
    """

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): none, a control map never runs the model."""
        return 0

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        check_batch(inputs, targets)
        grey = inputs.detach().mean(dim=1, keepdim=True)
        smooth = torch.tensor([1.0, 2.0, 1.0], dtype=inputs.dtype, device=inputs.device) / 4
        diff = torch.tensor([1.0, 0.0, -1.0], dtype=inputs.dtype, device=inputs.device)
        kernel_h = torch.outer(diff, smooth)  # derivative along rows (axis 0)
        kernels = torch.stack([kernel_h, kernel_h.T]).unsqueeze(1)
        padded = F.pad(grey, (1, 1, 1, 1), mode="replicate")
        edges = F.conv2d(padded, kernels)
        return edges.square().sum(dim=1, keepdim=True).div(2).sqrt()
