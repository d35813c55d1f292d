"""Occlusion (Zeiler & Fergus, ECCV 2014), with Captum's ``Occlusion`` conventions.

A ``patch_size`` x ``patch_size`` window (all channels) slides with ``stride`` from
the top-left corner; windows start at k * stride for k = 0 .. ceil((H - p) / s)
(the last one is cut at the border). Each window is replaced by the baseline
(any spec of ``methods.baselines``), and the score drop f_c(x) - f_c(x_occluded) is
credited to every pixel in the window; each pixel's total is divided by the number
of windows covering it. Output: (N, 1, H, W) (Captum repeats it over channels).

All N * P occluded images go through the model ``batch_size`` at a time.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods._autograd import check_batch
from methods._perturbation import check_score, masked_scores, target_scores, weighted_mask_sum
from methods.baselines import Baseline
from methods.model_state import frozen
from methods.validation import check_int


def _window_starts(size: int, patch: int, stride: int) -> torch.Tensor:
    return torch.arange(math.ceil((size - patch) / stride) + 1) * stride


class Occlusion:
    """Occlusion: the drop of the target score when a sliding window is replaced by the baseline.

    Captum's ``Occlusion`` conventions (module docstring): each pixel gets the mean score drop over the
    windows that cover it. Shape (N, 1, H, W).

    Args:
        patch_size (int, optional): Side in pixels of the square window (all channels), an integer >= 1 and
            at most the image's height and width. Default: 8.
        stride (int, optional): Step in pixels between window positions, an integer from 1 to ``patch_size``
            (so every pixel is covered). Default: 4.
        baseline (str, float or Tensor, optional): What the window becomes:
            ``zero``, ``mean``, ``blur`` or ``uniform`` (defined in :mod:`methods.baselines`), a number,
            or a tensor (a nested list in YAML) broadcastable to (N, C, H, W). Default: ``zero``.
        blur_sigma (float, optional): Std in pixels of the Gaussian for ``baseline=blur``, > 0. Default: 5.0.
        score (str, optional): What is explained: the target class's ``logit`` or its softmax
            ``probability``. Default: ``logit``.
        batch_size (int or None, optional): Occluded images per forward pass, an integer >= 1; None: all at
            once. Default: 256.
        seed (int or None, optional): Seed of ``baseline=uniform``'s noise; None takes the run's seed (the
            harness fills it in; 0 when called directly). Default: None.
    """

    def __init__(
        self,
        patch_size: int = 8,
        stride: int = 4,
        baseline="zero",
        blur_sigma: float = 5.0,
        score: str = "logit",
        batch_size: int | None = 256,
        seed: int | None = None,
    ) -> None:
        check_int("occlusion", "patch_size", patch_size)
        check_int("occlusion", "stride", stride)
        if stride > patch_size:
            raise ValueError(f"occlusion.stride must be <= patch_size ({patch_size}) so every pixel is covered; got {stride}")
        check_score("occlusion", score)
        check_int("occlusion", "batch_size", batch_size, allow_none=True)
        self.patch_size, self.stride, self.score, self.batch_size = patch_size, stride, score, batch_size
        self.baseline = Baseline(baseline, "occlusion", seed, blur_sigma)

    def windows(self, height: int, width: int, device) -> torch.Tensor:
        """Boolean window masks (P, 1, H, W), row-major over window positions."""
        if self.patch_size > min(height, width):
            raise ValueError(f"occlusion.patch_size {self.patch_size} exceeds the image size {height}x{width}")
        rows = _window_starts(height, self.patch_size, self.stride).to(device)
        cols = _window_starts(width, self.patch_size, self.stride).to(device)
        r, c = torch.arange(height, device=device), torch.arange(width, device=device)
        in_rows = (r >= rows[:, None]) & (r < rows[:, None] + self.patch_size)  # (R, H)
        in_cols = (c >= cols[:, None]) & (c < cols[:, None] + self.patch_size)  # (Q, W)
        return (in_rows[:, None, :, None] & in_cols[None, :, None, :]).flatten(0, 1).unsqueeze(1)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): the clean image and one per window position."""
        _, height, width = shape
        return 1 + len(_window_starts(height, self.patch_size, self.stride)) * len(_window_starts(width, self.patch_size, self.stride))

    seeded_per_sample = True  # baseline=uniform's noise is drawn from (seed, sample id)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        windows = self.windows(*inputs.shape[-2:], inputs.device)
        keep = lambda image, mask: ~windows[mask]  # noqa: E731 - 1 keeps the input
        base = self.baseline(inputs, ids)
        with frozen(model):
            full = target_scores(model, inputs, targets, self.score)
            occluded = masked_scores(model, inputs, targets, base, len(windows), keep, self.batch_size, self.score)
        drops = full[:, None] - occluded
        counts = windows.sum(dim=0, dtype=inputs.dtype)
        chunk = self.batch_size or len(windows)
        return weighted_mask_sum(drops, lambda image, mask: windows[mask], chunk) / counts
