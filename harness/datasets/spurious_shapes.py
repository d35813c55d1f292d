"""Spurious shapes: a controlled spurious-correlation image benchmark with exact masks.

Each image shows one foreground shape whose kind is the label (circle, square,
triangle, cross, diamond, ring) drawn in a random light tint over a background texture
("environment"). Environment e has its own texture (``backgrounds[e]``: natural
scikit-image textures such as grass, gravel, brick, or procedural patterns; see
:mod:`harness.datasets.textures`) and its own two colours. In the training
split the environment equals the label with probability ``spurious_correlation``
and is otherwise one of the other environments, uniformly; the test split is
balanced: every (class, environment) group has the same number of images, listed
in the order (class, environment) cycles, so any prefix of the split is balanced.

This follows the design of Waterbirds (Sagawa et al. 2020) and BAM (Yang & Kim 2019):
the background is a shortcut the model may or may not take, and the exact foreground
mask tells how much attribution lands on the object. ``groups`` holds the environment,
so the Waterbirds-style group of sample i is (``labels[i]``, ``groups[i]``).
How hard the true signal is to read is set by ``foreground_contrast`` (the shape's
colour is blended with the background by this weight) and ``noise``.

Generation is batched in torch and seeded: the same settings and seed give the same bytes.
Samples are generated in chunks of :data:`CHUNK` consecutive indices, each from its own
seeded generators (the first chunk from the split's, so a split of at most 512 images is
the same as before chunking), and :meth:`SpuriousShapes.samples` draws any indices alone:
it draws the random numbers of the chunks they fall in and renders only those images, so a
streamed evaluation never holds the whole test split or its background variants
(:meth:`SpuriousShapes.view`).
"""
from __future__ import annotations

import hashlib

import torch

from harness.datasets import textures
from harness.datasets.base import ImageDataset, ImageSplit, LazySplit, concatenate
from harness.datasets.shapes import SHAPES, check_shape_knobs, labels_and_groups, shape_masks

# Two colours (RGB in [0, 1]) per environment index; the texture comes from ``backgrounds``.
PALETTE = torch.tensor([
    [[0.15, 0.45, 0.15], [0.35, 0.70, 0.30]],   # green
    [[0.45, 0.45, 0.45], [0.70, 0.70, 0.70]],   # grey
    [[0.55, 0.35, 0.20], [0.80, 0.60, 0.40]],   # brick red
    [[0.20, 0.30, 0.60], [0.45, 0.60, 0.85]],   # water blue
    [[0.60, 0.20, 0.45], [0.85, 0.50, 0.70]],   # pink
    [[0.55, 0.55, 0.15], [0.85, 0.85, 0.40]],   # sand
])
BACKGROUNDS = ("grass", "gravel", "brick", "waves", "diagonals", "grid")
CHUNK = 512  # consecutive samples generated from one set of seeded generators


class SpuriousShapes(ImageDataset):
    """Shapes on textured backgrounds whose texture is a tunable shortcut, with exact foreground masks.

    The label is the shape; the background environment (a texture and two colours) equals
    the label with probability ``spurious_correlation`` in the training split, and the test
    split is balanced over (class, environment). Splits carry ``masks`` (the shape) and
    ``groups`` (the environment); :meth:`split` also gives background-swapped variants.

    Args:
        n_classes (int, optional): Number of shape classes, 2 to 6: the first ``n_classes`` of
            circle, square, triangle, cross, diamond, ring (``shapes.SHAPES``). Default: 4.
        image_size (int, optional): Side of the square RGB images in pixels, 16 to 512.
            Default: 32.
        n_train (int, optional): Images in the training split, at least 1. Default: 4000.
        n_test (int, optional): Images in the test split, at least 1, balanced over the
            (class, background) groups in cycling order, so any prefix is balanced. Default: 512.
        spurious_correlation (float, optional): In the training split, the probability that the
            background is the environment of the sample's class (else another, uniformly), in
            [0, 1]. Default: 0.95.
        foreground_contrast (float, optional): Weight with which the shape's colour is blended
            over the background, in (0, 1] (1: opaque). Default: 1.0.
        noise (float, optional): Standard deviation of Gaussian pixel noise on the [0, 1] scale,
            at least 0. Default: 0.05.
        backgrounds (list of str, optional): One texture per environment, no repeats, at least
            ``n_classes`` of them (the first ``n_classes`` are used); each one of the natural
            scikit-image textures grass, gravel, brick or the procedural stripes, waves, checker,
            dots, diagonals, grid (``textures.TEXTURES``).
            Default: [grass, gravel, brick, waves, diagonals, grid].
        mean (list of float, optional): Normalisation mean, one value per channel (3); images are
            ``(x - mean) / std`` of pixels x in [0, 1]. Default: [0.5, 0.5, 0.5].
        std (list of float, optional): Normalisation standard deviation, 3 positive values.
            Default: [0.25, 0.25, 0.25].
        seed (int or None, optional): Seed of the generator; null takes the run's seed (the
            harness fills it in; built directly, None means 0). Default: None.
    """

    VARIANTS = ("original", "only_foreground", "only_background", "same_class_background", "other_class_background")
    has_masks = True

    def __init__(
        self,
        n_classes: int = 4,
        image_size: int = 32,
        n_train: int = 4000,
        n_test: int = 512,
        spurious_correlation: float = 0.95,
        foreground_contrast: float = 1.0,
        noise: float = 0.05,
        backgrounds=BACKGROUNDS,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        seed: int | None = None,
    ) -> None:
        name = "dataset"
        check_shape_knobs(name, n_classes, n_train, n_test, foreground_contrast, noise)
        if not 16 <= image_size <= 512:
            raise ValueError(f"{name}.image_size must be between 16 and 512 pixels; got {image_size}")
        if not 0.0 <= spurious_correlation <= 1.0:
            raise ValueError(f"{name}.spurious_correlation must be in [0, 1]; got {spurious_correlation}")
        self.backgrounds = textures.check_names(backgrounds, f"{name}.backgrounds", n_classes)[:n_classes]
        self.group_names = list(self.backgrounds)
        self.num_classes, self.channels, self.image_size = n_classes, 3, image_size
        self.class_names = list(SHAPES[:n_classes])
        self.n = {"train": n_train, "test": n_test}
        self.correlation, self.contrast, self.noise = spurious_correlation, foreground_contrast, noise
        self.mean, self.std = self.check_stats(name, mean, std, 3)
        self.seed = 0 if seed is None else int(seed)

    def split(self, name: str, variant: str = "original") -> ImageSplit:
        """A split, or a background-swapped variant of it with the same foregrounds (Xiao et al. 2021).

        ``variant``: ``original``; ``only_foreground`` (the shape on the dataset-mean grey);
        ``only_background`` (the texture alone; the mask still marks where the shape was);
        ``same_class_background`` (environment = label); ``other_class_background``
        (a seeded environment of another class). The foreground of sample i (shape,
        position, colour) is the same in every variant.
        """
        self.check_split(name, variant)
        return self.samples(name, torch.arange(self.n[name]), variant)

    def view(self, name: str, variant: str = "original") -> LazySplit:
        """Split ``name`` with its labels and groups known and its images generated only for the samples selected."""
        self.check_split(name, variant)
        parts = [self.chunk_labels(name, variant, c) for c in range((self.n[name] + CHUNK - 1) // CHUNK)]
        labels, groups = (torch.cat(t) for t in zip(*parts))
        return LazySplit(self, name, variant, labels, groups)

    def samples(self, name: str, indices: torch.Tensor, variant: str = "original") -> ImageSplit:
        """The samples at ``indices`` of split ``name`` (or of its ``variant``), equal to ``split(name, variant).select(indices)``."""
        self.check_split(name, variant)
        indices = self.check_indices(name, indices, self.n[name])
        chunk = indices // CHUNK
        order = chunk.argsort(stable=True)
        parts = [self.chunk_samples(name, variant, int(c), indices[chunk == c] - int(c) * CHUNK) for c in chunk.unique()]
        if not parts:
            return self.chunk_samples(name, variant, 0, indices)
        joined = concatenate(parts)
        back = torch.empty_like(order)
        back[order] = torch.arange(len(order))
        return joined.select(back)  # in the order asked for

    def generators(self, name: str, chunk: int) -> list[torch.Generator]:
        """The five generators of one chunk: labels, foreground, background, noise, swap (chunk 0: the split's own seeds)."""
        base = (self.seed * 2 + self.SPLITS.index(name)) * 5
        if chunk == 0:
            return [torch.Generator().manual_seed(base + i) for i in range(5)]
        seeds = [int(hashlib.sha256(f"{self.seed}:{name}:{chunk}:{i}".encode()).hexdigest()[:15], 16) for i in range(5)]
        return [torch.Generator().manual_seed(s) for s in seeds]

    def chunk_labels(self, name: str, variant: str, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Labels and environments of every sample of one chunk."""
        gen_labels, _, _, _, gen_swap = self.generators(name, chunk)
        n, k = min(CHUNK, self.n[name] - chunk * CHUNK), self.num_classes
        labels, envs = labels_and_groups(name, n, k, self.correlation, gen_labels, start=chunk * CHUNK)
        if variant == "same_class_background":
            envs = labels
        elif variant == "other_class_background":
            envs = (labels + torch.randint(1, k, (n,), generator=gen_swap)) % k
        return labels, envs

    def chunk_samples(self, name: str, variant: str, chunk: int, rows: torch.Tensor) -> ImageSplit:
        """Samples ``rows`` (positions within the chunk) of one chunk: every random number of the chunk, only those images."""
        _, gen_fg, gen_bg, gen_noise, _ = self.generators(name, chunk)
        labels, envs = self.chunk_labels(name, variant, chunk)
        n, size = len(labels), self.image_size
        masks = shape_masks(labels, size, gen_fg, rows)
        colour = (0.75 + 0.25 * torch.rand(n, 3, 1, 1, generator=gen_fg))[rows]   # light, randomly tinted: independent of the class
        background = self.textures(envs, gen_bg, rows)
        if variant == "only_foreground":
            background = self.mean.view(1, 3, 1, 1).expand_as(background)
        foreground = (1 - self.contrast) * background + self.contrast * colour
        drawn = masks if variant != "only_background" else torch.zeros_like(masks)
        pixels = torch.where(drawn, foreground, background)
        noise = torch.randn((n, 3, size, size), generator=gen_noise)[rows]
        pixels = (pixels + self.noise * noise).clamp(0, 1)
        return ImageSplit(self.normalise(pixels), labels[rows], masks, envs[rows])

    # -- drawing --------------------------------------------------------------------------
    def textures(self, envs: torch.Tensor, gen: torch.Generator, rows: torch.Tensor) -> torch.Tensor:
        """Background pixels (R, 3, S, S) in [0, 1] of the environments of ``rows``."""
        t = textures.draw(self.backgrounds, envs, self.image_size, gen, rows)   # (R, 1, S, S) in [0, 1]
        envs = envs[rows]
        n = len(envs)
        low, high = PALETTE[envs, 0].view(n, 3, 1, 1), PALETTE[envs, 1].view(n, 3, 1, 1)
        return low + (high - low) * t
