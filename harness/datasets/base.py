"""The dataset contract: what every ``conf/dataset/*.yaml`` instantiates into.

A dataset object is cheap to build (it validates its settings and generates or reads
nothing); ``split("train" | "test")`` returns an :class:`ImageSplit` of normalised
images with labels and, where the dataset has them, exact foreground masks, group
ids and masks of a planted spurious feature. ``mean`` and ``std`` are the
normalisation statistics of the dataset config, so substrates such as "mean" or
"black" know what those mean in input space.

Groups follow Sagawa et al. (ICLR 2020, "Distributionally robust neural networks"):
``groups[i]`` is the environment (e.g. background) of sample i, named by
``group_names``; the group of sample i in the sense of worst-group accuracy is the
pair (``labels[i]``, ``groups[i]``).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import torch


@dataclass
class ImageSplit:
    images: torch.Tensor                 # (N, C, H, W), normalised
    labels: torch.Tensor                 # (N,) long
    masks: torch.Tensor | None = None    # (N, 1, H, W) bool: the object (foreground)
    groups: torch.Tensor | None = None   # (N,) long: e.g. the background environment
    spurious_masks: torch.Tensor | None = None  # (N, 1, H, W) bool: a planted shortcut (e.g. a decoy patch)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def head(self, n: int) -> ImageSplit:
        return self.select(slice(0, n))

    def select(self, index) -> ImageSplit:
        """The samples at ``index`` (a slice, an index tensor or a boolean mask), every field alike."""
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return ImageSplit(self.images[index], self.labels[index], pick(self.masks), pick(self.groups), pick(self.spurious_masks))


def concatenate(parts: list[ImageSplit]) -> ImageSplit:
    """The samples of ``parts`` one after the other (a field None in the first part is None in the result)."""
    joined = {f.name: None if getattr(parts[0], f.name) is None else torch.cat([getattr(p, f.name) for p in parts]) for f in fields(ImageSplit)}
    return ImageSplit(**joined)


class LazySplit:
    """A split whose labels and groups are known and whose images are made only for the samples selected.

    What a streamed evaluation reads (:meth:`ImageDataset.view`): ``len``, ``labels`` and ``groups`` of
    every sample, and ``select(index)`` (an index tensor, a slice or a boolean mask), which generates or
    decodes just those samples through ``dataset.samples(name, indices, variant)``.
    """

    def __init__(self, dataset: ImageDataset, name: str, variant: str, labels: torch.Tensor, groups: torch.Tensor | None) -> None:
        self.dataset, self.name, self.variant, self.labels, self.groups = dataset, name, variant, labels, groups

    def __len__(self) -> int:
        return self.labels.shape[0]

    def select(self, index) -> ImageSplit:
        return self.dataset.samples(self.name, torch.arange(len(self))[index], self.variant)


def batches(split: ImageSplit | LazySplit, size: int) -> Iterator[ImageSplit]:
    """The samples of ``split`` in consecutive batches of ``size`` (a lazy split makes one batch at a time)."""
    for start in range(0, len(split), size):
        yield split.select(slice(start, start + size))


@runtime_checkable
class Dataset(Protocol):
    """What the runner, training and metrics rely on in a dataset (``ImageDataset`` implements it)."""

    num_classes: int
    channels: int
    image_size: int
    class_names: list[str]
    mean: torch.Tensor                  # (C,) normalisation statistics of the pixels in [0, 1]
    std: torch.Tensor
    group_names: list[str] | None       # names of the ``groups`` ids, or None without groups
    has_masks: bool                     # splits carry exact foreground masks
    VARIANTS: tuple[str, ...]           # "original" and any background-swapped test variants

    def split(self, name: str, variant: str = "original") -> ImageSplit: ...

    def split_size(self, name: str) -> int | None: ...

    def denormalise(self, images: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Streams(Protocol):
    """A dataset that makes samples by index: ``view`` gives a :class:`LazySplit` (labels known, images made per batch).

    The runner streams such a test split batch by batch instead of holding it (``SpuriousShapes``, ``ImageFolder``).
    """

    def view(self, name: str, variant: str = "original") -> LazySplit: ...

    def samples(self, name: str, indices: torch.Tensor, variant: str = "original") -> ImageSplit: ...


@runtime_checkable
class FitsNormalisation(Protocol):
    """A dataset whose ``mean``/``std`` can be computed from its training images (:class:`ImageFolder` when they are not given).

    The runner computes them once per ``normalisation_identity()`` and caches them (:func:`harness.runner.fit_normalisation`).
    """

    def normalisation_pending(self) -> bool: ...

    def normalisation_identity(self) -> dict: ...

    def compute_normalisation(self) -> tuple[torch.Tensor, torch.Tensor]: ...

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None: ...


@runtime_checkable
class ReadsFiles(Protocol):
    """A dataset class whose images are files named by its settings (:class:`ImageFolder`).

    ``file_identity(settings)`` lists (path, size, modification time) of every file it would
    read; the cache keys of its splits, models and attributions include that listing
    (:func:`harness.cache.keys.dataset_identity`), so an edited, added or removed file
    invalidates them. Checked on the class, before anything is built.
    """

    @classmethod
    def file_identity(cls, settings: Mapping) -> list[tuple[str, int, int]]: ...


class ImageDataset:
    """Base class of the :class:`Dataset` contract: subclasses set the attributes below and implement ``split``."""

    num_classes: int
    channels: int
    image_size: int
    class_names: list[str]
    mean: torch.Tensor
    std: torch.Tensor
    group_names: list[str] | None = None   # names of the ``groups`` ids, where the dataset has groups
    has_masks: bool = False                 # splits carry exact foreground masks (metrics may need them)
    n: Mapping[str, int | None] = MappingProxyType({})   # images per split, where known when built
    SPLITS = ("train", "test")
    VARIANTS: tuple[str, ...] = ("original",)

    def split(self, name: str, variant: str = "original") -> ImageSplit:
        """``variant`` names a background-swapped version where the dataset has them (see SpuriousShapes)."""
        raise NotImplementedError

    def samples(self, name: str, indices: torch.Tensor, variant: str = "original") -> ImageSplit:
        """The samples at ``indices`` of split ``name``; here ``split(name, variant).select(indices)``, datasets that
        can make samples by index (``SpuriousShapes``, ``ImageFolder``) override it to make only those."""
        return self.split(name, variant).select(torch.as_tensor(indices, dtype=torch.long))

    def split_size(self, name: str) -> int | None:
        """Images in split ``name`` when known without reading or generating any (for the cost estimate); None if not.

        Subclasses that know their sizes when built keep them in ``self.n`` (``{"train": ..., "test": ...}``).
        """
        return self.n.get(name)

    @staticmethod
    def check_indices(name: str, indices, size: int) -> torch.Tensor:
        """``indices`` as a flat long tensor, or an IndexError in one line if any is outside split ``name`` of ``size`` samples."""
        rows = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if rows.numel() and not (0 <= int(rows.min()) and int(rows.max()) < size):
            raise IndexError(f"{name} split indices must be in [0, {size}); got {int(rows.min())}..{int(rows.max())}")
        return rows

    def check_split(self, name: str, variant: str = "original") -> None:
        if name not in self.SPLITS:
            raise ValueError(f"dataset split must be one of {', '.join(self.SPLITS)}; got {name!r}")
        if variant not in self.VARIANTS:
            raise ValueError(f"dataset variant must be one of {', '.join(self.VARIANTS)}; got {variant!r}")

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)

    def denormalise(self, images: torch.Tensor) -> torch.Tensor:
        return images * self.std.view(1, -1, 1, 1).to(images) + self.mean.view(1, -1, 1, 1).to(images)

    @staticmethod
    def check_stats(name: str, mean, std, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            mean_t, std_t = (torch.tensor([float(v) for v in values], dtype=torch.float32) for values in (mean, std))
            finite = bool(torch.isfinite(mean_t).all() and torch.isfinite(std_t).all()) and not isinstance(mean, str) and not isinstance(std, str)
        except (TypeError, ValueError):
            finite = False
        if not finite:
            raise ValueError(f"{name}.mean and {name}.std must be lists of {channels} finite numbers (one per channel); got {mean!r} and {std!r}")
        if mean_t.numel() != channels or std_t.numel() != channels:
            raise ValueError(f"{name}.mean and {name}.std need {channels} values (one per channel); got {len(mean_t)} and {len(std_t)}")
        if bool((std_t <= 0).any()):
            raise ValueError(f"{name}.std values must be positive; got {std_t.tolist()}")
        return mean_t, std_t
