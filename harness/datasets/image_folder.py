"""A user's own images, one folder per class, with optional foreground masks in a parallel folder.

Layout (the one ``torchvision.datasets.ImageFolder`` reads)::

    root/train/<class>/<name>.<ext>   and   root/test/<class>/<name>.<ext>
    or  root/<class>/<name>.<ext>     (split by a seeded draw: ``test_fraction`` of each class to test)

Classes are the folder names, sorted. The mask of ``root/[split/]<class>/<name>.<ext>`` is
``masks/[split/]<class>/<name>.<any image ext>``, where ``masks`` is ``masks_root`` when
given, else the folder ``<root>_masks`` beside ``root`` when it exists (``~/pictures`` ->
``~/pictures_masks``; :data:`MASKS_SUFFIX`), else there are no masks: a grey image whose
pixels above half brightness mark the object. Each image (and its mask alike) is
centre-cropped to a square and resized to ``image_size``.

Building the dataset (which pre-flight does) lists the folders and checks every file
cheaply, without decoding it: its first bytes (a known image header, not empty), its last
bytes where the format says how it ends (PNG's IEND chunk, JPEG's end marker FFD9, GIF's
trailer, the length BMP and WebP headers state; a file that fails this is decoded to be
sure), and, with masks, each image's and its mask's size from their headers (a mask of
another size would be silently misaligned by the crop and resize). A bad file stops the
command in one line naming it, before any run exists, or, with ``on_error: skip``, is left
out with a warning; so do a missing root, class or mask and fewer than two classes (every
metric would be trivial). The results are remembered per process by file path, size and
modification time, so the jobs of a sweep check a folder once. TIFF and PNM files are only
header-checked; a damaged one is found when the split is read, also in one line naming it.
The images are read when a split is first asked for. The listing of every file (path, size,
modification time) is part of the cache keys of the splits, models and attributions made
from the folder (:meth:`ImageFolder.file_identity`), so editing, adding or removing an
image invalidates them.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from harness.datasets.base import ImageDataset, ImageSplit, LazySplit

# The first bytes of every image format in EXTENSIONS.
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*",
              b"P1", b"P2", b"P3", b"P4", b"P5", b"P6")
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
ON_ERROR = ("raise", "skip")
MASKS_SUFFIX = "_masks"  # without masks_root, masks are read from <root>_masks beside root when that folder exists
PNG_END = b"IEND\xaeB`\x82"  # the last chunk of every PNG (type and CRC)
TAIL = 64  # bytes read from a file's end to see that it is complete (PNG and JPEG may carry a few trailing bytes)
_CHECKED: dict[tuple, str | None] = {}  # (files' path, size, mtime) -> the problem found, or None: each file checked once per process


class ImageFolder(ImageDataset):
    """A user's own images, one folder per class, with optional foreground masks in a parallel folder.

    Reads ``root/<class>/<image>`` (split into train and test by a seeded draw) or, when
    both exist, ``root/train/<class>/...`` and ``root/test/<class>/...``; the classes are
    the folder names, sorted. Building lists the files; the images are read when a split
    is first asked for.

    Args:
        root (str): The folder of class folders (or of ``train/`` and ``test/`` folders of
            them); ``~`` is expanded. Images are the files with an extension (any case) in
            ``image_folder.EXTENSIONS``: .png, .jpg, .jpeg, .bmp, .gif, .tif, .tiff, .webp,
            .ppm, .pgm. Required: the default null stops the run asking for it. Default: None.
        masks_root (str or None, optional): A folder parallel to ``root`` with each image's
            mask at the same relative path and name, with any of those extensions; pixels
            above half brightness mark the object (white = object). None: the folder
            ``<root>_masks`` beside ``root`` (``~/pictures_masks`` for ``~/pictures``) when it
            exists, else no masks. Every image needs a mask of its own size. Default: None.
        image_size (int, optional): Side in pixels, 8 to 1024, to which each image (and mask)
            is resized after centre-cropping it to a square. Default: 64.
        channels (int, optional): 3 (RGB) or 1 (grey); every image is converted to it.
            Default: 3.
        test_fraction (float, optional): Without ``train/`` and ``test/`` folders, the share of
            each class held out for the test split by a seeded draw, in (0, 1) (a class with
            a single image keeps it in train); unused with them. Default: 0.2.
        on_error (str, optional): What an empty, unreadable or truncated image (or a mask of
            another size than its image) does, one of
            ``image_folder.ON_ERROR``: ``raise`` stops the run naming the file; ``skip`` leaves
            it out with a warning. Default: raise.
        mean (list of float or None, optional): Normalisation mean, one value per channel (one
            value with ``channels: 1``; ImageNet's is [0.485, 0.456, 0.406]). None: computed from the
            training images (per channel, over every pixel of every training image, after the
            resize), when first needed; a run caches it beside the dataset splits. Give both
            ``mean`` and ``std`` or neither. Default: None.
        std (list of float or None, optional): Normalisation standard deviation, one positive value
            per channel (ImageNet's is [0.229, 0.224, 0.225]); None: computed with ``mean``. Default: None.
        seed (int or None, optional): Seed of the train/test draw; null takes the run's seed
            (the harness fills it in; built directly, None means 0). Default: None.
    """

    def __init__(self, root: str | None = None, image_size: int = 64, channels: int = 3, masks_root: str | None = None,
                 test_fraction: float = 0.2, on_error: str = "raise",
                 mean=None, std=None, seed: int | None = None) -> None:
        if root is None:
            raise ValueError("dataset.root is required: the folder of class folders (root/<class>/<image>), e.g. dataset.root=~/pictures")
        self.root = Path(str(root)).expanduser()
        if not self.root.is_dir():
            raise ValueError(f"dataset.root: no folder at {self.root}; give a folder of class folders (root/<class>/<image>)")
        if channels not in (1, 3):
            raise ValueError(f"dataset.channels must be 1 (grey) or 3 (RGB); got {channels}")
        if not 8 <= image_size <= 1024:
            raise ValueError(f"dataset.image_size must be between 8 and 1024 pixels; got {image_size}")
        if on_error not in ON_ERROR:
            raise ValueError(f"dataset.on_error must be one of {', '.join(ON_ERROR)}; got {on_error!r}")
        self.masks_root = self.masks_folder(self.root, masks_root)
        if self.masks_root is not None and not self.masks_root.is_dir():
            raise ValueError(f"dataset.masks_root: no folder at {self.masks_root}; give the folder of masks parallel to dataset.root, or null")
        self.channels, self.image_size, self.on_error = int(channels), int(image_size), on_error
        self.has_masks = self.masks_root is not None
        if (mean is None) != (std is None):
            raise ValueError("dataset.mean and dataset.std: give both (one value per channel) or neither (null: computed from the training images)")
        self._stats = None if mean is None else self.check_stats("dataset", mean, std, self.channels)
        self.seed = 0 if seed is None else int(seed)
        presplit = (self.root / "train").is_dir() and (self.root / "test").is_dir()
        self.class_names = self.classes(self.root / "train" if presplit else self.root)
        self.num_classes = len(self.class_names)
        if presplit:
            self.files = {s: self.listing(self.root / s, Path(s)) for s in self.SPLITS}
        else:
            if not 0 < test_fraction < 1:
                raise ValueError(f"dataset.test_fraction must be in (0, 1); got {test_fraction}")
            self.files = self.seeded_split(self.listing(self.root, Path()), test_fraction)
        if self.num_classes < 2:
            raise ValueError(f"dataset.root: {self.root} has {self.num_classes} class folder ({', '.join(self.class_names)}); "
                             "allowed: at least 2 classes (with one, every prediction is right and every metric trivial)")
        self.files = {s: [f for f in files if self.usable(f[0], f[2])] for s, files in self.files.items()}
        for s, files in self.files.items():
            if not files:
                raise ValueError(f"dataset.root: no {s} images (extensions {', '.join(EXTENSIONS)}) under {self.root}")
        self._cache: dict[str, ImageSplit] = {}

    @property
    def mean(self) -> torch.Tensor:  # type: ignore[override]
        return self.statistics()[0]

    @property
    def std(self) -> torch.Tensor:  # type: ignore[override]
        return self.statistics()[1]

    def statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)``: as given, or computed from the training images the first time they are needed."""
        if self._stats is None:
            self.set_normalisation(*self.compute_normalisation())
        return self._stats  # type: ignore[return-value]

    def normalisation_pending(self) -> bool:
        """True while ``mean``/``std`` are to be computed from the training images (not given, not yet computed)."""
        return self._stats is None

    def normalisation_identity(self) -> dict:
        """What determines the computed statistics: every training file (path, size, modification time) and the reading settings."""
        files = [(str(path), path.stat().st_size, path.stat().st_mtime_ns) for path, _, _ in self.files["train"]]
        return {"normalisation": files, "image_size": self.image_size, "channels": self.channels, "on_error": self.on_error}

    def compute_normalisation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and standard deviation of every pixel of the training images, read one at a time (float64 sums)."""
        total = torch.zeros(self.channels, dtype=torch.float64)
        squares, count = torch.zeros_like(total), 0
        for path, _, _ in self.files["train"]:
            try:
                pixels = self.load(path, "RGB" if self.channels == 3 else "L").double().flatten(1)
            except ValueError as error:
                if self.on_error == "raise":
                    raise
                warnings.warn(f"skipping: {error}", UserWarning, stacklevel=2)
                continue
            total += pixels.sum(1)
            squares += (pixels * pixels).sum(1)
            count += pixels.shape[1]
        if count == 0:
            raise ValueError(f"dataset: every train image under {self.root} was unreadable and skipped")
        mean = total / count
        std = (squares / count - mean * mean).clamp_min(0).sqrt()
        if bool((std <= 1e-6).any()):
            warnings.warn(f"dataset: the training images are constant in channel(s) {(std <= 1e-6).nonzero().flatten().tolist()}; "
                          "their std is taken as 1 (give dataset.mean and dataset.std to choose)")
            std = torch.where(std <= 1e-6, torch.ones_like(std), std)
        return mean.float(), std.float()

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self._stats = self.check_stats("dataset", mean.tolist(), std.tolist(), self.channels)

    @staticmethod
    def masks_folder(root: Path, masks_root: str | None) -> Path | None:
        """``masks_root`` when given, else ``<root>_masks`` beside ``root`` when that folder exists (:data:`MASKS_SUFFIX`), else None."""
        if masks_root is not None:
            return Path(str(masks_root)).expanduser()
        folder = Path(os.path.abspath(root))
        beside = folder.with_name(folder.name + MASKS_SUFFIX) if folder.name else None
        return beside if beside is not None and beside.is_dir() else None

    @classmethod
    def file_identity(cls, settings: Mapping) -> list[tuple[str, int, int]]:
        """(path, size, modification time) of every image file under ``settings["root"]`` and its masks folder (:class:`ReadsFiles`)."""
        root, masks_root = settings.get("root"), settings.get("masks_root")
        if root is None or not Path(str(root)).expanduser().is_dir():
            return []  # the constructor says what is wrong
        folder = Path(str(root)).expanduser()
        found = []
        for top in (folder, cls.masks_folder(folder, masks_root)):
            if top is None or not top.is_dir():
                continue
            for where, folders, names in os.walk(top):
                folders.sort()
                for name in sorted(names):
                    if os.path.splitext(name)[1].lower() in EXTENSIONS:
                        stat = os.stat(os.path.join(where, name))
                        found.append((os.path.join(where, name), stat.st_size, stat.st_mtime_ns))
        return found

    def usable(self, image: Path, mask: Path | None) -> bool:
        """Whether an image (and its mask) passed :meth:`file_problem` and have the same size; else raise, or warn with ``on_error: skip``."""
        try:
            key: tuple | None = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (image, mask) if p is not None)
        except OSError:
            key = None  # file_problem names the file that cannot be read
        if key in _CHECKED:
            problem = _CHECKED[key]
        else:
            problem = self.file_problem(image) or (None if mask is None else self.file_problem(mask))
            if problem is None and mask is not None:
                try:
                    self.check_mask_size(image, mask)
                except ValueError as error:
                    problem = str(error)
            if key is not None:
                _CHECKED[key] = problem
        if problem is None:
            return True
        if self.on_error == "raise":
            raise ValueError(problem)
        warnings.warn(f"skipping: {problem}", UserWarning, stacklevel=3)
        return False

    def file_problem(self, path: Path) -> str | None:
        """The one-line problem of a file by its first and last bytes (decoding it only when its end looks wrong), or None."""
        try:
            with open(path, "rb") as handle:
                head = handle.read(16)
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - TAIL))
                tail = handle.read(TAIL)
        except OSError as error:
            return f"dataset: file {path} cannot be read ({error.strerror}); fix or remove it, or set dataset.on_error=skip"
        webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
        if not (head.startswith(SIGNATURES) or webp):
            problem = "is empty" if not head else "is not an image (unknown header)"
            return f"dataset: file {path} {problem}; fix or remove it, or set dataset.on_error=skip"
        complete = True
        if head.startswith(SIGNATURES[0]):
            complete = PNG_END in tail
        elif head.startswith(SIGNATURES[1]):
            complete = b"\xff\xd9" in tail
        elif head.startswith((b"GIF87a", b"GIF89a")):
            complete = tail.rstrip(b"\x00").endswith(b";")
        elif head.startswith(b"BM") or webp:
            complete = int.from_bytes(head[2:6] if not webp else head[4:8], "little") + (8 if webp else 0) <= size
        if complete:
            return None
        try:  # the end looks wrong: decode it to be sure (a few files carry long trailers)
            self.load(path, "L")
        except ValueError as error:
            return str(error)
        return None

    @staticmethod
    def check_mask_size(image: Path, mask: Path) -> None:
        """The mask must have its image's size (both are cropped and resized alike); one line naming both if not."""
        from PIL import Image

        try:
            with Image.open(image) as a, Image.open(mask) as b:
                sizes = a.size, b.size
        except Exception:  # noqa: BLE001 - an unreadable file is reported by load, naming it
            return
        if sizes[0] != sizes[1]:
            raise ValueError(f"dataset: mask {mask} is {sizes[1][0]}x{sizes[1][1]} but its image {image} is {sizes[0][0]}x{sizes[0][1]}; "
                             "allowed: a mask of the image's own size")

    @staticmethod
    def classes(folder: Path) -> list[str]:
        names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not names:
            raise ValueError(f"dataset.root: {folder} has no class folders; expected {folder}/<class>/<image>")
        return names

    def listing(self, folder: Path, relative: Path) -> list[tuple[Path, int, Path | None]]:
        """(image file, class index, mask file or None) of every image under ``folder``, in sorted order."""
        out = []
        for label, name in enumerate(self.class_names):
            class_dir = folder / name
            if not class_dir.is_dir():
                raise ValueError(f"dataset.root: class folder {class_dir} is missing (classes are {', '.join(self.class_names)})")
            for path in sorted(p for p in class_dir.iterdir() if p.suffix.lower() in EXTENSIONS):
                out.append((path, label, self.mask_of(relative / name, path)))
        return out

    def mask_of(self, relative: Path, image: Path) -> Path | None:
        if self.masks_root is None:
            return None
        found = [p for p in (self.masks_root / relative).glob(image.stem + ".*") if p.suffix.lower() in EXTENSIONS]
        if not found:
            raise ValueError(f"dataset.masks_root: no mask for {image} (expected {self.masks_root / relative / image.stem}.png)")
        return found[0]

    def seeded_split(self, files, test_fraction: float) -> dict[str, list]:
        gen = torch.Generator().manual_seed(self.seed)
        out: dict[str, list] = {"train": [], "test": []}
        for label in range(self.num_classes):
            mine = [f for f in files if f[1] == label]
            order = torch.randperm(len(mine), generator=gen).tolist()
            n_test = round(len(mine) * test_fraction) if len(mine) > 1 else 0
            out["test"] += [mine[i] for i in sorted(order[:n_test])]
            out["train"] += [mine[i] for i in sorted(order[n_test:])]
        return out

    def load(self, path: Path, mode: str) -> torch.Tensor:
        """The file as (C, S, S) floats in [0, 1], centre-cropped and resized; errors name the file."""
        from PIL import Image, ImageFile

        lenient, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False  # a truncated file is an error, whatever another library set
        try:
            with Image.open(path) as image:
                image.load()
                pixels = np.asarray(image.convert(mode), dtype=np.float32) / 255
        except Exception as error:  # noqa: BLE001 - any decoder failure is a bad file
            reason = " ".join(str(error).split()) or type(error).__name__
            raise ValueError(f"dataset: cannot read image {path} ({reason}); fix or remove it, or set dataset.on_error=skip") from None
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = lenient
        tensor = torch.from_numpy(pixels).view(pixels.shape[0], pixels.shape[1], -1).permute(2, 0, 1)
        side = min(tensor.shape[1:])
        top, left = (tensor.shape[1] - side) // 2, (tensor.shape[2] - side) // 2
        square = tensor[:, top:top + side, left:left + side][None]
        return F.interpolate(square, size=(self.image_size,) * 2, mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)

    def read(self, path: Path, mask_path: Path | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One file's image (C, S, S) in [0, 1] and its mask, if any; a ValueError naming the file if unreadable."""
        if mask_path is not None:
            self.check_mask_size(path, mask_path)
        image = self.load(path, "RGB" if self.channels == 3 else "L")
        return image, None if mask_path is None else self.load(mask_path, "L") > 0.5

    def view(self, name: str, variant: str = "original") -> ImageSplit | LazySplit:
        """Split ``name`` with its labels known and its files decoded only for the samples selected (:meth:`samples`).

        With ``on_error=skip`` the split is read whole instead: which files are skipped decides the indices."""
        self.check_split(name, variant)
        if self.on_error != "raise" or name in self._cache:
            return self.split(name, variant)
        return LazySplit(self, name, variant, torch.tensor([label for _, label, _ in self.files[name]], dtype=torch.long), None)

    def samples(self, name: str, indices: torch.Tensor, variant: str = "original") -> ImageSplit:
        """The samples at ``indices`` of split ``name``, decoding only those files (``on_error=raise``; else from the whole split)."""
        self.check_split(name, variant)
        indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if self.on_error != "raise" or name in self._cache:
            return self.split(name, variant).select(indices)
        files = [self.files[name][i] for i in indices.tolist()]
        read = [self.read(path, mask_path) for path, _, mask_path in files]
        images = torch.stack([image for image, _ in read]) if read else torch.empty(0, self.channels, self.image_size, self.image_size)
        masks = None if self.masks_root is None or not read else torch.stack([mask for _, mask in read])
        return ImageSplit(self.normalise(images), torch.tensor([label for _, label, _ in files], dtype=torch.long), masks)

    def split(self, name: str, variant: str = "original") -> ImageSplit:
        self.check_split(name, variant)
        if name in self._cache:
            return self._cache[name]
        images, labels, masks = [], [], []
        for path, label, mask_path in self.files[name]:
            try:
                image, mask = self.read(path, mask_path)
            except ValueError as error:
                if self.on_error == "raise":
                    raise
                warnings.warn(f"skipping: {error}", UserWarning, stacklevel=2)
                continue
            images.append(image)
            labels.append(label)
            masks.append(mask)
        if not images:
            raise ValueError(f"dataset: every {name} image under {self.root} was unreadable and skipped")
        split = ImageSplit(self.normalise(torch.stack(images)), torch.tensor(labels, dtype=torch.long),
                           None if self.masks_root is None else torch.stack(masks))
        self._cache[name] = split
        return split
