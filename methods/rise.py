"""RISE: Randomized Input Sampling for Explanation (Petsiuk, Das & Saenko, BMVC 2018).

``n_masks`` random masks: an s x s grid of cells (s = ceil(H / ``cell_size``), the
same for W) kept independently with probability ``p``, upsampled bilinearly to
(s + 1) * cell_size and cropped at a random shift in [0, cell_size) (smooth masks
whose edges are not aligned to the grid). The saliency of pixel u is
S(u) = 1 / (n_masks * p) * sum_i f_c(x masked by M_i) * M_i(u), with the masked-out
part replaced by the baseline (zero, as in RISE, by default) and the score the
softmax probability of the target (``score: probability``, as in the paper).

Each image draws its own masks from (``seed``, sample id, mask index) (:mod:`methods.randomness`;
null seed -> 0), so its map depends neither on the batch nor on ``batch_size`` (the harness gives
the test-split index as id; called without ids, the image's position 0..N-1 in the call). They are
made chunk by chunk on the device, so neither the masks nor the masked images are all in memory at
once. Output (N, 1, H, W).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from methods._autograd import check_batch
from methods._perturbation import check_score, masked_scores
from methods.baselines import Baseline
from methods.model_state import frozen
from methods.randomness import call_ids, uniform_at
from methods.validation import check_int, check_seed

GRID_STREAM, SHIFT_STREAM = 103, 104  # methods.randomness streams of the mask grids and shifts


class RISE:
    """RISE: the average of random smooth masks, each weighted by the target score of the masked image.

    Petsiuk et al.'s masks and normalisation (module docstring). Shape (N, 1, H, W).

    Args:
        n_masks (int, optional): Number of random masks per image (each image draws its own from the seed
            and its id); one forward pass per image and mask. An integer >= 1. Default: 2000.
        cell_size (int, optional): Pixels per grid cell before upsampling, an integer >= 1 (the paper:
            224 px / 7 cells = 32). Default: 8.
        p (float, optional): Probability of keeping a cell, in (0, 1]. Default: 0.5.
        baseline (str, float or Tensor, optional): What masked-out pixels become (RISE: ``zero``):
            ``zero``, ``mean``, ``blur`` or ``uniform`` (defined in :mod:`methods.baselines`), a number,
            or a tensor (a nested list in YAML) broadcastable to (N, C, H, W). Default: ``zero``.
        blur_sigma (float, optional): Std in pixels of the Gaussian for ``baseline=blur``, > 0. Default: 5.0.
        score (str, optional): What is explained: the target class's softmax ``probability`` (as the paper)
            or its ``logit``. Default: ``probability``.
        batch_size (int or None, optional): Masked images per forward pass, an integer >= 1; None: all at
            once. Default: 256.
        seed (int or None, optional): Seed of the masks (and of ``baseline=uniform``'s noise); None takes the
            run's seed (the harness fills it in; 0 when called directly). Default: None.
    """

    def __init__(
        self,
        n_masks: int = 2000,
        cell_size: int = 8,
        p: float = 0.5,
        baseline="zero",
        blur_sigma: float = 5.0,
        score: str = "probability",
        batch_size: int | None = 256,
        seed: int | None = None,
    ) -> None:
        check_int("rise", "n_masks", n_masks)
        check_int("rise", "cell_size", cell_size)
        if not 0 < p <= 1:
            raise ValueError(f"rise.p must be in (0, 1]; got {p!r}")
        check_score("rise", score)
        check_int("rise", "batch_size", batch_size, allow_none=True)
        check_seed("rise", seed)
        self.n_masks, self.cell_size, self.p, self.score = n_masks, cell_size, float(p), score
        self.batch_size, self.seed = batch_size, seed
        self.baseline = Baseline(baseline, "rise", seed, blur_sigma)

    seeded_per_sample = True

    def masks(self, height: int, width: int, ids: torch.Tensor):
        """``mask_fn(image_idx, mask_idx) -> (B, 1, H, W)``: mask ``mask_idx`` of the image with id ``ids[image_idx]``."""
        c, device = self.cell_size, ids.device
        rows, cols = math.ceil(height / c), math.ceil(width / c)
        cells = rows * cols
        r = torch.arange(height, device=device)
        q = torch.arange(width, device=device)

        def mask_fn(image, mask):
            sample = ids[image]
            grid_at = mask.view(-1, 1) * cells + torch.arange(cells, device=device)
            grids = (uniform_at(self.seed, GRID_STREAM, sample, grid_at) < self.p).float().view(-1, 1, rows, cols)
            shift_at = mask.view(-1, 1) * 2 + torch.arange(2, device=device)
            shifts = (uniform_at(self.seed, SHIFT_STREAM, sample, shift_at, torch.float64) * c).long()  # (B, 2) in [0, c)
            up = F.interpolate(grids, size=((rows + 1) * c, (cols + 1) * c), mode="bilinear", align_corners=False)
            row_idx = (shifts[:, 0, None] + r).view(-1, 1, height, 1).expand(-1, 1, height, up.shape[-1])
            up = up.gather(2, row_idx)
            col_idx = (shifts[:, 1, None] + q).view(-1, 1, 1, width).expand(-1, 1, height, width)
            return up.gather(3, col_idx)

        return mask_fn

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one per mask."""
        return self.n_masks

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        ids = call_ids(inputs, ids)
        mask_fn = self.masks(*inputs.shape[-2:], ids)
        base = self.baseline(inputs, ids)
        with frozen(model):
            _, total = masked_scores(model, inputs, targets, base, self.n_masks, mask_fn, self.batch_size, self.score, weighted_sum=True)
        return total / (self.n_masks * self.p)
