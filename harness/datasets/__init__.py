"""Datasets: what a ``conf/dataset/*.yaml`` instantiates into, and the generators behind them.

Public names:

* the contract: :class:`Dataset` (a ``typing.Protocol``), its base class :class:`ImageDataset`
  and the split it returns, :class:`ImageSplit`; :class:`FitsNormalisation`, a dataset whose
  ``mean``/``std`` are computed from its training images; :class:`ReadsFiles`, a dataset read from
  files whose listing is part of its cache keys; :class:`Streams`, a dataset that makes
  samples by index, and its :class:`LazySplit` (what a streamed evaluation reads, :func:`batches`);
* datasets (each a ``dataset._target_``): :class:`SpuriousShapes` (shapes on textured
  backgrounds with a tunable spurious correlation), :class:`DecoyShapes` (a Decoy-MNIST-style
  corner patch), :class:`Photos` (scikit-image's photographs), :class:`ImageFolder` (a user's
  class folders), :class:`CIFAR10` and :class:`MNIST` (torchvision's files on disk).

Which test images a run explains: :func:`evaluation_indices` (class-stratified from the seed); :func:`prefetched`
makes the streamed batches in worker processes ahead of the loop, in their order (``eval.num_workers``).

The modules ``shapes`` and ``textures`` are the drawing helpers the synthetic datasets share.
"""
from harness.datasets.base import Dataset, FitsNormalisation, ImageDataset, ImageSplit, LazySplit, ReadsFiles, Streams, batches
from harness.datasets.decoy import DecoyShapes
from harness.datasets.image_folder import ImageFolder
from harness.datasets.photos import Photos
from harness.datasets.prefetch import prefetched
from harness.datasets.sampling import SAMPLING, evaluation_indices
from harness.datasets.spurious_shapes import SpuriousShapes
from harness.datasets.torchvision_sets import CIFAR10, MNIST

__all__ = [
    "CIFAR10", "MNIST", "SAMPLING", "Dataset", "DecoyShapes", "FitsNormalisation", "ImageDataset", "ImageFolder", "ImageSplit", "LazySplit", "Photos",
    "ReadsFiles", "SpuriousShapes", "Streams", "batches", "evaluation_indices", "prefetched",
]
