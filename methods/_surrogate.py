"""Interpretable features and coalition scoring, shared by KernelSHAP and LIME.

Features are superpixels from scikit-image (``slic``, ``quickshift``, ``felzenszwalb``;
run once per image on the CPU, before any model call, on the channel-min-max
rescaled image) or square ``patches`` of ``patch_size`` pixels. ``segments``
returns (N, H, W) feature ids 0..M_n - 1 and M_n per image; images may have
different M_n, padded to M = max M_n (padded features never appear in an image).

A coalition z in {0, 1}^M keeps the features with z_j = 1 and replaces the others
by the baseline; ``coalition_scores`` evaluates P coalitions per image through
``methods._perturbation.masked_scores`` (batched, memory-bounded). ``CoalitionExplainer``
holds the settings and checks that KernelSHAP and LIME share. Their coalitions are drawn per image from
(``seed``, sample id) (:func:`coalition_uniform`), so an image's map does not depend on its batch.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from skimage import segmentation as skseg
from torch import nn

from methods._perturbation import check_score, masked_scores
from methods.baselines import Baseline
from methods.randomness import uniform_at
from methods.validation import check_int, check_positive, check_seed

SEGMENTATIONS = ("patches", "slic", "quickshift", "felzenszwalb")
SPREADS = ("feature", "area")


def check_features(owner: str, segmentation: str, n_segments: int, patch_size: int, spread: str) -> None:
    if segmentation not in SEGMENTATIONS:
        raise ValueError(f"{owner}.segmentation must be one of {', '.join(SEGMENTATIONS)}; got {segmentation!r}")
    check_int(owner, "n_segments", n_segments)
    check_int(owner, "patch_size", patch_size)
    if spread not in SPREADS:
        raise ValueError(f"{owner}.spread must be one of {', '.join(SPREADS)}; got {spread!r}")


def segments(inputs: torch.Tensor, segmentation: str, n_segments: int, compactness: float, patch_size: int):
    n, _, h, w = inputs.shape
    if segmentation == "patches":
        rows = torch.arange(h, device=inputs.device) // patch_size
        cols = torch.arange(w, device=inputs.device) // patch_size
        grid = rows[:, None] * math.ceil(w / patch_size) + cols[None, :]
        return grid.expand(n, h, w), torch.full((n,), int(grid.max()) + 1, device=inputs.device)
    images = inputs.detach().float().cpu()
    low, high = images.amin(dim=(1, 2, 3), keepdim=True), images.amax(dim=(1, 2, 3), keepdim=True)
    images = ((images - low) / (high - low).clamp(min=1e-12)).permute(0, 2, 3, 1).numpy().astype(np.float64)
    labels = []
    for image in images:  # scikit-image segments one image at a time (CPU, once per call)
        if segmentation == "slic":
            seg = skseg.slic(image, n_segments=n_segments, compactness=compactness, start_label=0, channel_axis=-1)
        elif segmentation == "quickshift":
            seg = skseg.quickshift(image if image.shape[-1] == 3 else np.repeat(image[..., :1], 3, -1), kernel_size=2, max_dist=6, ratio=0.5)
        else:
            seg = skseg.felzenszwalb(image, scale=100, sigma=0.5, min_size=max(1, h * w // (4 * n_segments)), channel_axis=-1)
        labels.append(np.unique(seg, return_inverse=True)[1].reshape(h, w))
    seg = torch.from_numpy(np.stack(labels)).long().to(inputs.device)
    return seg, seg.flatten(1).amax(dim=1) + 1


def coalition_scores(model: nn.Module, inputs, targets, base, seg, coalitions, batch_size, score) -> torch.Tensor:
    """Scores (N, P) of the coalitions (N, P, M) (bool) of each image; call inside ``frozen``."""
    flat = seg.flatten(1)

    def mask_fn(image, mask):
        keep = coalitions[image, mask]  # (B, M)
        return keep.gather(1, flat[image]).view(-1, 1, *seg.shape[1:])

    return masked_scores(model, inputs, targets, base, coalitions.shape[1], mask_fn, batch_size, score)


def coalition_uniform(seed: int | None, stream: int, ids: torch.Tensor, counts: torch.Tensor, n_coalitions: int, m: int,
                      dtype=torch.float64) -> torch.Tensor:
    """U(0, 1) values (N, P, M): coalition p, feature j < M_n of image ``ids[n]`` at counter p * M_n + j, so the same
    whatever the batch's padding M (the padded features j >= M_n get values that are never used)."""
    p = torch.arange(n_coalitions, device=ids.device).view(1, -1, 1)
    at = p * counts.to(ids.device).long().view(-1, 1, 1) + torch.arange(m, device=ids.device)  # (N, P, M)
    return uniform_at(seed, stream, ids, at.flatten(1), dtype).view(len(ids), n_coalitions, m)


def to_pixels(values: torch.Tensor, seg: torch.Tensor, spread: str) -> torch.Tensor:
    """Feature values (N, M) -> map (N, 1, H, W); ``area`` divides by each feature's pixel count."""
    flat = seg.flatten(1)
    if spread == "area":
        area = torch.zeros_like(values).scatter_add_(1, flat, torch.ones_like(flat, dtype=values.dtype))
        values = values / area.clamp(min=1)
    return values.gather(1, flat).view(seg.shape[0], 1, *seg.shape[1:])


class CoalitionExplainer:
    """Base of the coalition-sampling explainers :class:`~methods.kernel_shap.KernelSHAP` and LIME.

    It holds and checks (before any work) the settings they share: ``n_samples`` coalitions per image over
    interpretable features (superpixels or patches), scored with the removed features set to the baseline;
    the subclass fits the feature values. Output (N, 1, H, W).

    Args:
        n_samples (int, optional): Coalitions per image, one forward pass each; an integer >= 1 (LIME: >= 2).
            Default: 512.
        segmentation (str, optional): The interpretable features: ``slic``, ``quickshift`` or
            ``felzenszwalb`` superpixels (scikit-image, on each image min-max rescaled) or square
            ``patches``. Default: ``slic``.
        n_segments (int, optional): Target superpixel count (approximate) for ``slic`` and
            ``felzenszwalb``, an integer >= 1; unused by ``quickshift`` and ``patches``. Default: 50.
        compactness (float, optional): ``slic``'s compactness, a positive number (higher: squarer superpixels); unused by the
            others. Default: 10.0.
        patch_size (int, optional): Side in pixels of the square features of ``segmentation=patches``, an
            integer >= 1. Default: 8.
        baseline (str, float or Tensor, optional): What removed features become:
            ``zero``, ``mean``, ``blur`` or ``uniform`` (defined in :mod:`methods.baselines`), a number,
            or a tensor (a nested list in YAML) broadcastable to (N, C, H, W). Default: ``zero``.
        blur_sigma (float, optional): Std in pixels of the Gaussian for ``baseline=blur``, > 0. Default: 5.0.
        spread (str, optional): How feature values become pixels: ``feature`` (each pixel gets its feature's
            value) or ``area`` (the value divided by the feature's pixel count). Default: ``feature``.
        score (str, optional): What is explained: the target class's ``logit`` or its softmax
            ``probability``. Default: ``logit``.
        batch_size (int or None, optional): Perturbed images per forward pass, an integer >= 1; None: all at
            once. Default: 256.
        seed (int or None, optional): Seed of the coalitions (and of ``baseline=uniform``'s noise), drawn per
            image from the seed and its id (``ids=``; 0..N-1 when called without); None takes the run's seed
            (the harness fills it in; 0 when called directly). Default: None.
    """

    name = "coalition"
    min_samples = 1
    seeded_per_sample = True

    def __init__(
        self,
        n_samples: int = 512,
        segmentation: str = "slic",
        n_segments: int = 50,
        compactness: float = 10.0,
        patch_size: int = 8,
        baseline="zero",
        blur_sigma: float = 5.0,
        spread: str = "feature",
        score: str = "logit",
        batch_size: int | None = 256,
        seed: int | None = None,
    ) -> None:
        check_int(self.name, "n_samples", n_samples, self.min_samples)
        check_features(self.name, segmentation, n_segments, patch_size, spread)
        check_score(self.name, score)
        check_int(self.name, "batch_size", batch_size, allow_none=True)
        check_positive(self.name, "compactness", compactness)
        check_seed(self.name, seed)
        self.n_samples, self.segmentation, self.n_segments = n_samples, segmentation, n_segments
        self.compactness, self.patch_size, self.spread, self.score = float(compactness), patch_size, spread, score
        self.batch_size, self.seed = batch_size, seed
        self.baseline = Baseline(baseline, self.name, seed, blur_sigma)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one per sampled coalition."""
        return self.n_samples

    def features(self, inputs: torch.Tensor):
        """(N, H, W) feature ids and (N,) feature counts of the images."""
        return segments(inputs, self.segmentation, self.n_segments, self.compactness, self.patch_size)

    def coalition_scores(self, model: nn.Module, inputs, targets, base, seg, coalitions) -> torch.Tensor:
        """Scores (N, P) of the coalitions (N, P, M); call inside ``frozen``."""
        return coalition_scores(model, inputs, targets, base, seg, coalitions, self.batch_size, self.score)
