"""Prefetching the streamed evaluation batches in worker processes, in their seeded order.

:func:`prefetched` yields ``(indices, split.select(indices))`` for each batch of sample indices, in the
order given (the seeded, stratified draw cut into ``eval.batch_size`` batches). With ``num_workers=0``
(the default) each batch is made when the loop asks for it, in this process, as before. With
``num_workers=W > 0`` a :class:`torch.utils.data.DataLoader` over the list of index batches makes up to
``2 W`` batches ahead in W worker processes (decoding an image folder's files, generating
``spurious_shapes`` samples by index) while this process explains and scores; the DataLoader returns
them in order, so the results equal the sequential ones. Which images a batch holds depends only on
its indices (a dataset makes samples by index, with no generator state), and the loader gets its own
seeded generator, so the global random state of the run is not touched either.

Why torch's DataLoader: it is the well-kept implementation of exactly this (ordered results, worker
start-up and shutdown, exceptions re-raised in the main process); here it only maps batches of
indices to batches, ``batch_size=None``.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from harness.datasets.base import ImageSplit, LazySplit


class _Batches(TorchDataset):
    """Item b: ``(batches[b], split.select(batches[b]))``."""

    def __init__(self, split: ImageSplit | LazySplit, batches: Sequence[torch.Tensor]) -> None:
        self.split, self.batches = split, list(batches)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, number: int) -> tuple[torch.Tensor, ImageSplit]:
        return self.batches[number], self.split.select(self.batches[number])


def _as_is(item):
    return item


def prefetched(split: ImageSplit | LazySplit, batches: Sequence[torch.Tensor], num_workers: int = 0,
               seed: int = 0) -> Iterator[tuple[torch.Tensor, ImageSplit]]:
    """``(indices, samples)`` for each of ``batches`` in order, made ``num_workers`` processes ahead (0: when asked, here)."""
    if num_workers < 0:
        raise ValueError(f"eval.num_workers must be an integer >= 0; got {num_workers}")
    if num_workers == 0:
        for idx in batches:
            yield idx, split.select(idx)
        return
    loader = DataLoader(_Batches(split, batches), batch_size=None, shuffle=False, num_workers=num_workers,
                        collate_fn=_as_is, generator=torch.Generator().manual_seed(seed))
    yield from loader
