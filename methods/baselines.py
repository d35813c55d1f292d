"""Reference inputs x' ("baselines") shared by path and perturbation methods.

A baseline spec is one of
- ``zero``: all zeros in the model's input space (the dataset mean grey for
  normalised data; RISE's and Captum's default);
- ``mean``: each image's per-channel mean value;
- ``blur``: the image blurred by a Gaussian of std ``blur_sigma`` pixels
  (Fong & Vedaldi 2017; kernel 2*ceil(3 sigma)+1, reflect padding);
- ``uniform``: seeded uniform noise over each image's value range [min x, max x];
- a number: that constant everywhere;
- a tensor (Python API) or nested list (YAML) broadcastable to (N, C, H, W).

The noise is drawn per sample from (``seed``, sample id) (:mod:`methods.randomness`; null seed -> 0),
the same on every device; the ids are the explainer's (0..N-1 when called without).
"""
from __future__ import annotations

import math

import torch
from torchvision.transforms.functional import gaussian_blur

from methods.randomness import call_ids, uniform
from methods.validation import check_seed

KINDS = ("zero", "mean", "blur", "uniform")
UNIFORM_STREAM = 101  # methods.randomness stream of baseline=uniform


class Baseline:
    """A baseline spec, checked once; called on inputs (N, C, H, W) it returns the reference x' of that shape.

    Args:
        spec (str, float or Tensor): ``zero``, ``mean``, ``blur`` or ``uniform`` (see the module docstring),
            a number, or a tensor (or nested list) broadcastable to (N, C, H, W).
        owner (str): The explainer's config name, for the error messages (``occlusion.baseline ...``).
        seed (int or None, optional): Seed of ``uniform``'s noise; None: 0. Default: None.
        blur_sigma (float, optional): Std in pixels of ``blur``'s Gaussian, > 0. Default: 5.0.
    """

    def __init__(self, spec, owner: str, seed: int | None = None, blur_sigma: float = 5.0) -> None:
        if isinstance(spec, str):
            if spec not in KINDS:
                raise ValueError(f"{owner}.baseline must be one of {', '.join(KINDS)}, a number or a tensor; got {spec!r}")
        elif isinstance(spec, bool) or not isinstance(spec, (int, float, torch.Tensor, list, tuple)):
            raise ValueError(f"{owner}.baseline must be one of {', '.join(KINDS)}, a number or a tensor; got {spec!r}")
        check_seed(owner, seed)
        if not blur_sigma > 0:
            raise ValueError(f"{owner}.blur_sigma must be > 0; got {blur_sigma}")
        if isinstance(spec, (list, tuple)):
            spec = torch.tensor(spec, dtype=torch.float32)
        self.spec, self.seed, self.blur_sigma = spec, seed, float(blur_sigma)

    def __call__(self, inputs: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """The reference for ``inputs``; ``ids`` (one per input, default 0..N-1) seed ``uniform``'s noise per sample."""
        spec = self.spec
        if isinstance(spec, torch.Tensor):
            return spec.to(inputs.device, inputs.dtype).expand_as(inputs).clone()
        if not isinstance(spec, str):
            return torch.full_like(inputs, float(spec))
        if spec == "zero":
            return torch.zeros_like(inputs)
        if spec == "mean":
            return inputs.mean(dim=(2, 3), keepdim=True).expand_as(inputs).clone()
        if spec == "blur":
            radius = min(math.ceil(3 * self.blur_sigma), min(inputs.shape[-2:]) - 1)  # reflect padding needs radius < size
            return gaussian_blur(inputs, [2 * radius + 1] * 2, [self.blur_sigma] * 2)
        u = uniform(self.seed, UNIFORM_STREAM, call_ids(inputs, ids), tuple(inputs.shape[1:]), inputs.dtype)
        low = inputs.amin(dim=(1, 2, 3), keepdim=True)
        high = inputs.amax(dim=(1, 2, 3), keepdim=True)
        return low + u * (high - low)
