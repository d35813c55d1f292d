"""SpuriousShapes makes any samples alone, equal to the whole split's (issue 17: a streamed run never holds the split)."""
import hashlib

import torch

from harness.datasets import LazySplit, SpuriousShapes, Streams, batches
from harness.datasets.spurious_shapes import CHUNK


def _digest(split) -> str:
    parts = [split.images, split.masks, split.labels, split.groups]
    return hashlib.sha256(b"".join(t.numpy().tobytes() for t in parts)).hexdigest()[:16]


def test_a_split_within_one_chunk_has_the_bytes_it_had_before_chunking():
    dataset = SpuriousShapes(image_size=16, n_test=64, n_train=40, seed=3)  # digests recorded before samples were made by index
    assert _digest(dataset.split("test")) == "73819cd91a32fd9e"
    assert _digest(dataset.split("test", "other_class_background")) == "3b04e183bd991805"


def test_samples_by_index_equal_the_split_in_every_variant_across_chunks():
    dataset = SpuriousShapes(image_size=16, n_test=CHUNK + 40, n_train=8, seed=1)
    assert isinstance(dataset, Streams)
    picked = torch.tensor([CHUNK + 39, 3, CHUNK, 0, CHUNK - 1])  # unsorted, both chunks
    for variant in dataset.VARIANTS:
        whole = dataset.split("test", variant)
        alone = dataset.samples("test", picked, variant)
        for field in ("images", "masks", "labels", "groups"):
            assert torch.equal(getattr(alone, field), getattr(whole, field)[picked]), (variant, field)
    view = dataset.view("test")
    assert isinstance(view, LazySplit) and len(view) == CHUNK + 40 and torch.equal(view.labels, whole.labels)
    assert sum(len(b) for b in batches(view, 200)) == CHUNK + 40
