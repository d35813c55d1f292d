"""Decoy shapes: a Decoy-MNIST-style shortcut, a corner patch whose shade encodes the label.

After Decoy-MNIST (Ross, Hughes & Doshi-Velez, IJCAI 2017, "Right for the right
reasons"): each grey-level image shows a light shape (the label, as in
:mod:`harness.datasets.shapes`) on a dark noisy background, plus a
``patch_size`` x ``patch_size`` patch in a randomly chosen corner. The patch's shade
is that of "shade class" g, ``shade(g) = 1 - 0.8 g / (k - 1)`` (Ross et al. use
255 - 25 y). In the training split g equals the label with probability
``decoy_correlation`` (else another class, uniformly); in the test split (label, g)
cycles through all pairs, so the shade is uninformative and the split balanced.

``masks`` marks the shape (the object); ``spurious_masks`` marks the patch (the
decoy); ``groups`` holds the shade class g (``group_names``: ``shade_of_<class>``).
Test variants: ``label_shade`` (the patch shade encodes the label, as in training)
and ``no_patch`` (the patch is not drawn; the background shows through).

Samples are made by index (:meth:`DecoyShapes.samples`, :meth:`DecoyShapes.view`): the split's
random numbers are drawn whole (a few per image and the image's noise), only the images asked
for are drawn, so a streamed evaluation holds one batch of images and the samples equal those
of the whole split.
"""
from __future__ import annotations

import torch

from harness.datasets.base import ImageDataset, ImageSplit, LazySplit
from harness.datasets.shapes import SHAPES, check_shape_knobs, labels_and_groups, shape_masks


class DecoyShapes(ImageDataset):
    """Grey-level shapes with a corner patch whose shade encodes the label in training (Decoy-MNIST style).

    The label is the shape, drawn light on a dark noisy background; a patch in a random
    corner has the shade of a "shade class" g, which equals the label with probability
    ``decoy_correlation`` in the training split and is balanced against it in the test
    split. Splits carry ``masks`` (the shape), ``spurious_masks`` (the patch) and ``groups`` (g).

    Args:
        n_classes (int, optional): Number of shape classes, 2 to 6: the first ``n_classes`` of
            circle, square, triangle, cross, diamond, ring (``shapes.SHAPES``). Default: 4.
        image_size (int, optional): Side of the square one-channel images in pixels, 16 to 512.
            Default: 28.
        n_train (int, optional): Images in the training split, at least 1. Default: 4000.
        n_test (int, optional): Images in the test split, at least 1, balanced over the
            (class, patch shade) groups. Default: 512.
        patch_size (int, optional): Side of the square corner patch in pixels, 1 to
            ``image_size // 4``. Default: 4.
        decoy_correlation (float, optional): In the training split, the probability that the
            patch has the shade of the sample's class (else another class's, uniformly), in
            [0, 1]. Default: 1.0.
        foreground_contrast (float, optional): Brightness of the shape on the dark background,
            in (0, 1] (each shape gets 0.75 to 1 times it). Default: 0.8.
        noise (float, optional): Standard deviation of Gaussian pixel noise on the [0, 1] scale,
            at least 0. Default: 0.05.
        mean (list of float, optional): Normalisation mean of the one channel (1 value).
            Default: [0.2].
        std (list of float, optional): Normalisation standard deviation of the one channel
            (1 positive value). Default: [0.3].
        seed (int or None, optional): Seed of the generator; null takes the run's seed (the
            harness fills it in; built directly, None means 0). Default: None.
    """

    VARIANTS = ("original", "label_shade", "no_patch")
    has_masks = True

    def __init__(self, n_classes: int = 4, image_size: int = 28, n_train: int = 4000, n_test: int = 512,
                 patch_size: int = 4, decoy_correlation: float = 1.0, foreground_contrast: float = 0.8,
                 noise: float = 0.05, mean=(0.2,), std=(0.3,), seed: int | None = None) -> None:
        name = "dataset"
        check_shape_knobs(name, n_classes, n_train, n_test, foreground_contrast, noise)
        if not 16 <= image_size <= 512:  # as spurious_shapes: a larger side would fill memory when the split is generated
            raise ValueError(f"{name}.image_size must be between 16 and 512 pixels; got {image_size}")
        if not 1 <= patch_size <= image_size // 4:
            raise ValueError(f"{name}.patch_size must be between 1 and image_size / 4 = {image_size // 4} pixels; got {patch_size}")
        if not 0.0 <= decoy_correlation <= 1.0:
            raise ValueError(f"{name}.decoy_correlation must be in [0, 1]; got {decoy_correlation}")
        self.num_classes, self.channels, self.image_size, self.patch_size = n_classes, 1, image_size, patch_size
        self.class_names = list(SHAPES[:n_classes])
        self.group_names = [f"shade_of_{c}" for c in self.class_names]
        self.n = {"train": n_train, "test": n_test}
        self.correlation, self.contrast, self.noise = decoy_correlation, foreground_contrast, noise
        self.mean, self.std = self.check_stats(name, mean, std, 1)
        self.seed = 0 if seed is None else int(seed)

    def shade(self, g: torch.Tensor) -> torch.Tensor:
        return 1 - 0.8 * g.float() / (self.num_classes - 1)

    def split(self, name: str, variant: str = "original") -> ImageSplit:
        self.check_split(name, variant)
        return self.samples(name, torch.arange(self.n[name]), variant)

    def view(self, name: str, variant: str = "original") -> LazySplit:
        """Split ``name`` with its labels and shade classes known and its images drawn only for the samples selected."""
        self.check_split(name, variant)
        gen_labels = self.generators(name)[0]
        labels, shades = self.labels_and_shades(name, variant, gen_labels)
        return LazySplit(self, name, variant, labels, shades)

    def generators(self, name: str) -> list[torch.Generator]:
        """The split's four generators: labels, foreground, patch corner, noise."""
        base = (self.seed * 2 + self.SPLITS.index(name)) * 5 + 1000003
        return [torch.Generator().manual_seed(base + i) for i in range(4)]

    def labels_and_shades(self, name: str, variant: str, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        labels, shades = labels_and_groups(name, self.n[name], self.num_classes, self.correlation, gen)
        return labels, labels if variant == "label_shade" else shades

    def samples(self, name: str, indices: torch.Tensor, variant: str = "original") -> ImageSplit:
        """The samples at ``indices`` of split ``name`` (or of its ``variant``), equal to ``split(name, variant).select(indices)``:
        every random number of the split is drawn (a few numbers per image, and its noise), only those images are drawn."""
        self.check_split(name, variant)
        n, s, p = self.n[name], self.image_size, self.patch_size
        rows = self.check_indices(name, indices, n)
        gen_labels, gen_fg, gen_patch, gen_noise = self.generators(name)
        labels, shades = self.labels_and_shades(name, variant, gen_labels)
        masks = shape_masks(labels, s, gen_fg, rows)
        brightness = self.contrast * (0.75 + 0.25 * torch.rand(n, 1, 1, 1, generator=gen_fg))[rows]
        corner = torch.randint(4, (n,), generator=gen_patch)[rows]
        noise = torch.randn((n, 1, s, s), generator=gen_noise)[rows]
        labels, shades, r = labels[rows], shades[rows], len(rows)
        top = torch.where(corner // 2 == 0, 1, s - p - 1)                      # one pixel in from the edges
        left = torch.where(corner % 2 == 0, 1, s - p - 1)
        coords = torch.arange(s)
        inside_y = (coords.view(1, -1) >= top.view(-1, 1)) & (coords.view(1, -1) < (top + p).view(-1, 1))
        inside_x = (coords.view(1, -1) >= left.view(-1, 1)) & (coords.view(1, -1) < (left + p).view(-1, 1))
        patch = (inside_y.view(r, 1, s, 1) & inside_x.view(r, 1, 1, s)) & ~masks    # the shape stays on top
        pixels = torch.where(masks, brightness, torch.zeros(()))
        if variant != "no_patch":
            pixels = torch.where(patch, self.shade(shades).view(r, 1, 1, 1), pixels)
        pixels = (pixels + self.noise * noise).clamp(0, 1)
        return ImageSplit(self.normalise(pixels), labels, masks, shades, spurious_masks=patch)
