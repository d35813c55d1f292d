"""What every dataset config instantiates into.

A dataset object is cheap to build (it validates its settings and generates or reads
nothing); ``split("train" | "test")`` returns an :class:`ImageSplit` of normalised
images with labels and, where the dataset has them, exact foreground masks and group
ids. ``mean`` and ``std`` are the normalisation statistics of the dataset config, so
substrates such as "mean" or "black" know what those mean in input space.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ImageSplit:
    images: torch.Tensor                 # (N, C, H, W), normalised
    labels: torch.Tensor                 # (N,) long
    masks: torch.Tensor | None = None    # (N, 1, H, W) bool: the object (foreground)
    groups: torch.Tensor | None = None   # (N,) long: e.g. the background environment

    def __len__(self) -> int:
        return self.labels.shape[0]

    def head(self, n: int) -> "ImageSplit":
        pick = lambda t: None if t is None else t[:n]  # noqa: E731
        return ImageSplit(self.images[:n], self.labels[:n], pick(self.masks), pick(self.groups))


class ImageDataset:
    """Base class: subclasses set the attributes below and implement ``split``."""

    num_classes: int
    channels: int
    image_size: int
    class_names: list[str]
    mean: torch.Tensor
    std: torch.Tensor
    SPLITS = ("train", "test")

    def split(self, name: str, variant: str = "original") -> ImageSplit:
        """``variant`` names a background-swapped version where the dataset has them (see SpuriousShapes)."""
        raise NotImplementedError

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)

    def denormalise(self, images: torch.Tensor) -> torch.Tensor:
        return images * self.std.view(1, -1, 1, 1).to(images) + self.mean.view(1, -1, 1, 1).to(images)

    @staticmethod
    def check_stats(name: str, mean, std, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        mean_t, std_t = torch.as_tensor(list(mean), dtype=torch.float32), torch.as_tensor(list(std), dtype=torch.float32)
        if mean_t.numel() != channels or std_t.numel() != channels:
            raise ValueError(f"{name}.mean and {name}.std need {channels} values (one per channel); got {len(mean_t)} and {len(std_t)}")
        if bool((std_t <= 0).any()):
            raise ValueError(f"{name}.std values must be positive; got {std_t.tolist()}")
        return mean_t, std_t
