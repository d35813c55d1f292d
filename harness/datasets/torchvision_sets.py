"""CIFAR-10 (Krizhevsky 2009) and MNIST (LeCun et al. 1998), read from torchvision's on-disk layout.

``root`` is the folder torchvision would use: CIFAR-10 lives in
``<root>/cifar-10-batches-py/`` (the python pickle batches), MNIST in
``<root>/MNIST/raw/`` (the uncompressed idx files). Building the dataset only checks
that those files exist (cheap: no reading), so a run with ``download: false`` and
absent files stops at once, in one line naming where the files are expected. With
``download: true`` torchvision downloads (and verifies) them into ``root`` when the
first split is read. ``n_train``/``n_test`` (null: all) take a seeded random subset of
the training split and the first images of the test split. Normalisation statistics
are the usual per-channel ones of each training set.

The CIFAR-10 batches are pickles, and a plain ``pickle.load`` of a crafted file runs
arbitrary code. They are read with :class:`BatchUnpickler`, which allows only what the
format contains (dicts, lists, str/bytes, ints, NumPy arrays of a plain dtype): any
other global (``os.system``, ``builtins.eval``, ...) is refused in one line before it
is called. Building the dataset already reads every batch this way, once per process
and file (:func:`check_batches`, ~1 s for all six), so a crafted or broken batch stops
pre-flight before any run exists. (torchvision's own reader is used only right after
``download=true`` has fetched and MD5-verified the files.)
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from harness.datasets.base import ImageDataset, ImageSplit


class BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR batch: only NumPy's array reconstruction helpers may be looked up, nothing else."""

    ALLOWED = frozenset({
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # how protocol 2 writes bytes
    })

    def __init__(self, file, path: Path) -> None:
        super().__init__(file, encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise ValueError(f"{self.path} is not a CIFAR-10 batch: it asks to run {module}.{name}, and a batch holds only "
                             "dicts, lists, strings and NumPy arrays; refused (replace the file with torchvision's)")
        return super().find_class(module, name)


def load_batch(path: Path) -> dict:
    """A CIFAR batch (``data`` uint8 (N, 3072), ``labels``) read with :class:`BatchUnpickler`; one line if it is not one."""
    try:
        with open(path, "rb") as f:
            entry = BatchUnpickler(f, path).load()
    except ValueError:
        raise
    except Exception as error:
        raise ValueError(f"{path} is not a readable CIFAR-10 batch ({type(error).__name__}: {' '.join(str(error).split())[:120]}); "
                         "replace it with torchvision's file") from None
    if not isinstance(entry, dict) or "data" not in entry or not ({"labels", "fine_labels"} & set(entry)):
        raise ValueError(f"{path} is not a CIFAR-10 batch (a dict with 'data' and 'labels'); replace it with torchvision's file")
    if not isinstance(entry["data"], np.ndarray) or entry["data"].dtype == object or entry["data"].size % 3072:
        raise ValueError(f"{path} is not a CIFAR-10 batch ('data' must be a uint8 array of 3072 values per image)")
    return entry


_verified: set[tuple[str, int, int]] = set()


def check_batches(paths: list[Path]) -> None:
    """Read every batch with :func:`load_batch` once per process and file version; one line on the first bad one."""
    for path in paths:
        stat = path.stat()
        version = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if version not in _verified:
            load_batch(path)
            _verified.add(version)


class TorchvisionDataset(ImageDataset):
    """Shared checks and subsetting; subclasses name their files and read them.

    The arguments :class:`CIFAR10` and :class:`MNIST` share (each documents its own
    ``mean`` and ``std``). Building checks that the files exist without reading them.

    Args:
        root (str): The folder torchvision would use (``<root>/cifar-10-batches-py/``,
            ``<root>/MNIST/raw/``); ``~`` is expanded. Required in Python; the YAML's default
            is ``${paths.root}/data``.
        download (bool, optional): True lets torchvision download (and verify) absent files
            into ``root`` when the first split is read (needs the network); False stops the
            run at once, naming where the files are expected. Default: False.
        n_train (int or None, optional): A seeded random subset of this many training images, a
            positive integer; None: the whole split (CIFAR-10 50000, MNIST 60000). Default: None.
        n_test (int or None, optional): The first this many test images, a positive integer;
            None: the whole split (10000). Default: None.
        seed (int or None, optional): Seed of the ``n_train`` draw; null takes the run's seed
            (the harness fills it in; built directly, None means 0). Default: None.
    """

    NAME = ""

    def __init__(self, root: str, download: bool, n_train: int | None, n_test: int | None, mean, std, seed: int | None) -> None:
        self.root = Path(str(root)).expanduser()
        self.download = bool(download)
        for key, value in (("n_train", n_train), ("n_test", n_test)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"dataset.{key} must be a positive integer or null (all); got {value!r}")
        self.n = {"train": n_train, "test": n_test}
        self.mean, self.std = self.check_stats("dataset", mean, std, self.channels)
        self.seed = 0 if seed is None else int(seed)
        missing = [f for f in self.files() if not f.is_file()]
        if missing and not self.download:
            raise ValueError(f"dataset.root: {self.NAME} files not found under {self.folder()} (first missing: {missing[0].name}); "
                             f"put torchvision's {self.NAME} files there, point dataset.root at them, or set dataset.download=true")
        self._cache: dict[str, ImageSplit] = {}

    def folder(self) -> Path:
        raise NotImplementedError

    def files(self) -> list[Path]:
        raise NotImplementedError

    def fetch(self) -> None:
        raise NotImplementedError

    def read(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels (N, C, H, W) in [0, 1] and labels (N,) of split ``name``."""
        raise NotImplementedError

    def split(self, name: str, variant: str = "original") -> ImageSplit:
        self.check_split(name, variant)
        if name not in self._cache:
            if self.download and not all(f.is_file() for f in self.files()):
                self.fetch()
            pixels, labels = self.read(name)
            n = self.n[name]
            if n is not None and n < len(labels):
                pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.seed))[:n] if name == "train" else torch.arange(n)
                pixels, labels = pixels[pick], labels[pick]
            self._cache[name] = ImageSplit(self.normalise(pixels), labels)
        return self._cache[name]


class CIFAR10(TorchvisionDataset):
    """CIFAR-10 (Krizhevsky 2009): 32x32 RGB images of 10 classes, from ``<root>/cifar-10-batches-py/``.

    50000 training and 10000 test images (torchvision's python pickle batches). ``root``,
    ``download``, ``n_train``, ``n_test`` and ``seed`` are documented on :class:`TorchvisionDataset`.

    Args:
        mean (list of float, optional): Normalisation mean, 3 values (one per channel; CIFAR-10's
            training-set statistics). Default: [0.4914, 0.4822, 0.4465].
        std (list of float, optional): Normalisation standard deviation, 3 positive values.
            Default: [0.2470, 0.2435, 0.2616].
    """

    NAME = "cifar10"

    def __init__(self, root: str, download: bool = False, n_train: int | None = None, n_test: int | None = None,
                 mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), seed: int | None = None) -> None:
        from torchvision.datasets import CIFAR10 as Source
        self.source = Source
        self.num_classes, self.channels, self.image_size = 10, 3, 32
        self.class_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        super().__init__(root, download, n_train, n_test, mean, std, seed)
        if all(f.is_file() for f in self.files()):  # pre-flight: a crafted or broken batch stops here, before any run
            check_batches(self.files())

    def folder(self) -> Path:
        return self.root / self.source.base_folder

    def files(self) -> list[Path]:
        return [self.folder() / name for name, _ in self.source.train_list + self.source.test_list]

    def fetch(self) -> None:
        self.source(str(self.root), train=True, download=True)

    def read(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        batches = self.source.train_list if name == "train" else self.source.test_list
        data, labels = [], []
        for file_name, _ in batches:
            entry = load_batch(self.folder() / file_name)
            data.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels += list(entry["labels"] if "labels" in entry else entry["fine_labels"])
        return torch.from_numpy(np.concatenate(data)).float() / 255, torch.tensor(labels, dtype=torch.long)


class MNIST(TorchvisionDataset):
    """MNIST (LeCun et al. 1998): 28x28 grey-level digits of 10 classes, from ``<root>/MNIST/raw/``.

    60000 training and 10000 test images (the uncompressed idx files). ``root``, ``download``,
    ``n_train``, ``n_test`` and ``seed`` are documented on :class:`TorchvisionDataset`.

    Args:
        mean (list of float, optional): Normalisation mean of the one channel (1 value; MNIST's
            training-set statistic). Default: [0.1307].
        std (list of float, optional): Normalisation standard deviation, 1 positive value.
            Default: [0.3081].
    """

    NAME = "mnist"
    FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

    def __init__(self, root: str, download: bool = False, n_train: int | None = None, n_test: int | None = None,
                 mean=(0.1307,), std=(0.3081,), seed: int | None = None) -> None:
        self.num_classes, self.channels, self.image_size = 10, 1, 28
        self.class_names = [str(d) for d in range(10)]
        super().__init__(root, download, n_train, n_test, mean, std, seed)

    def folder(self) -> Path:
        return self.root / "MNIST" / "raw"

    def files(self) -> list[Path]:
        return [self.folder() / f for pair in self.FILES.values() for f in pair]

    def fetch(self) -> None:
        from torchvision.datasets import MNIST as Source
        Source(str(self.root), train=True, download=True)

    def read(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.datasets.mnist import read_image_file, read_label_file
        images, labels = (os.fspath(self.folder() / f) for f in self.FILES[name])
        return read_image_file(images).unsqueeze(1).float() / 255, read_label_file(labels).long()
