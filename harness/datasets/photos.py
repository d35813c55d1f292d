"""Natural photographs that ship inside scikit-image, for qualitative heat maps on any model.

The colour photographs in ``skimage.data`` that load without a download (checked
by the tests): ``astronaut`` (Eileen Collins), ``chelsea`` (a tabby cat), ``coffee``
(a cup of espresso), ``rocket`` (a launch) and ``motorcycle`` (the left view of
``stereo_motorcycle``). Each is centre-cropped to a square and resized
(antialiased) to ``image_size``.

``labels: imagenet`` (default) gives each photo its ImageNet-1k class (1000 classes,
torchvision's category names), so a network with ``weights: DEFAULT`` explains its
own predictions; ``labels: photos`` numbers the photos 0..n-1 as their own classes.
The train and test splits are the same photographs: this dataset is for looking at
explanations of models trained elsewhere (published weights or a checkpoint), not
for training. Normalisation defaults to the ImageNet statistics torchvision's
published weights expect. Samples are made by index (:meth:`Photos.samples`): a streamed run
resizes only the photographs of its batch.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from harness.datasets.base import ImageDataset, ImageSplit, LazySplit

# ImageNet-1k class of each photograph (index into torchvision's category list).
IMAGENET_CLASS = {"astronaut": 834, "chelsea": 281, "coffee": 967, "rocket": 657, "motorcycle": 670}
PHOTOS = tuple(IMAGENET_CLASS)
LABELS = ("imagenet", "photos")


@functools.lru_cache(maxsize=8)
def photo(name: str) -> torch.Tensor:
    """The photograph ``name`` as (3, H, W) floats in [0, 1]."""
    import skimage.data

    pixels = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    return torch.from_numpy(pixels[..., :3].copy()).permute(2, 0, 1).float() / 255


class Photos(ImageDataset):
    """Colour photographs shipped inside scikit-image (no download), for qualitative heat maps.

    Each photograph is centre-cropped to a square and resized. The train and test splits
    are the same photographs: this dataset is for explaining models trained elsewhere
    (published weights or a checkpoint), not for training.

    Args:
        photos (list of str, optional): The photographs, in order, at least one; each one of
            astronaut, chelsea, coffee, rocket, motorcycle (``photos.PHOTOS``).
            Default: [astronaut, chelsea, coffee, rocket, motorcycle].
        image_size (int, optional): Side of the square images in pixels, 16 to 1024. Default: 224.
        labels (str, optional): One of ``photos.LABELS``: ``imagenet`` gives each photograph its
            ImageNet-1k class (1000 classes, for ``model.weights: DEFAULT``); ``photos`` numbers
            the photographs 0..n-1 as their own classes. Default: imagenet.
        mean (list of float, optional): Normalisation mean, one value per channel (3); ImageNet's,
            as torchvision's published weights expect. Default: [0.485, 0.456, 0.406].
        std (list of float, optional): Normalisation standard deviation, 3 positive values.
            Default: [0.229, 0.224, 0.225].
        seed (int or None, optional): Unused (nothing is random); taken so that one run seed
            seeds every dataset alike. Default: None.
    """

    def __init__(self, photos=PHOTOS, image_size: int = 224, labels: str = "imagenet",
                 mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), seed: int | None = None) -> None:
        self.photos = tuple(str(p) for p in photos)
        unknown = [p for p in self.photos if p not in IMAGENET_CLASS]
        if unknown or not self.photos:
            raise ValueError(f"dataset.photos has unknown photo {unknown[0] if unknown else '(none)'!r}; allowed: {', '.join(PHOTOS)}")
        if labels not in LABELS:
            raise ValueError(f"dataset.labels must be one of {', '.join(LABELS)}; got {labels!r}")
        if not 16 <= image_size <= 1024:
            raise ValueError(f"dataset.image_size must be between 16 and 1024 pixels; got {image_size}")
        self.labels_kind, self.image_size, self.channels = labels, int(image_size), 3
        if labels == "imagenet":
            from torchvision.models._meta import _IMAGENET_CATEGORIES
            self.class_names, self.num_classes = list(_IMAGENET_CATEGORIES), len(_IMAGENET_CATEGORIES)
        else:
            self.class_names, self.num_classes = list(self.photos), len(self.photos)
        self.mean, self.std = self.check_stats("dataset", mean, std, 3)
        self.seed = seed  # nothing random here; kept so one seed seeds every dataset alike

    def split(self, name: str, variant: str = "original") -> ImageSplit:
        return self.samples(name, torch.arange(len(self.photos)), variant)

    def view(self, name: str, variant: str = "original") -> LazySplit:
        """Split ``name`` with its labels known and its photographs resized only for the samples selected."""
        self.check_split(name, variant)
        return LazySplit(self, name, variant, self.labels(), None)

    def labels(self) -> torch.Tensor:
        if self.labels_kind == "imagenet":
            return torch.tensor([IMAGENET_CLASS[p] for p in self.photos])
        return torch.arange(len(self.photos))

    def samples(self, name: str, indices: torch.Tensor, variant: str = "original") -> ImageSplit:
        """The photographs at ``indices`` (each centre-cropped and resized alone), equal to ``split(name).select(indices)``."""
        self.check_split(name, variant)
        rows = self.check_indices(name, indices, len(self.photos))
        images = []
        for i in rows.tolist():
            pixels = photo(self.photos[i])
            side = min(pixels.shape[1:])
            top, left = (pixels.shape[1] - side) // 2, (pixels.shape[2] - side) // 2
            square = pixels[:, top:top + side, left:left + side]
            images.append(F.interpolate(square[None], size=(self.image_size, self.image_size), mode="bilinear",
                                        antialias=True, align_corners=False)[0].clamp(0, 1))
        stacked = torch.stack(images) if images else torch.empty(0, 3, self.image_size, self.image_size)
        return ImageSplit(self.normalise(stacked), self.labels()[rows])
