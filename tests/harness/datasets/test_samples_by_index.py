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


def test_an_image_folder_decodes_only_the_files_selected(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from harness.datasets import ImageFolder

    for cls, value in (("dark", 40), ("light", 200)):
        for i in range(3):
            (tmp_path / cls).mkdir(exist_ok=True)
            Image.fromarray(np.full((12, 12, 3), value + i, dtype=np.uint8)).save(tmp_path / cls / f"img{i}.png")
    lazy = ImageFolder(str(tmp_path), image_size=12, test_fraction=0.5, mean=[0, 0, 0], std=[1, 1, 1])
    whole = ImageFolder(str(tmp_path), image_size=12, test_fraction=0.5, mean=[0, 0, 0], std=[1, 1, 1]).split("test")
    view = lazy.view("test")
    assert isinstance(view, LazySplit) and torch.equal(view.labels, whole.labels)
    opened = []
    real = lazy.load
    monkeypatch.setattr(lazy, "load", lambda path, mode: opened.append(path) or real(path, mode))
    batch = view.select(torch.tensor([2, 0]))
    assert len(opened) == 2 and torch.equal(batch.images, whole.images[[2, 0]]) and torch.equal(batch.labels, whole.labels[[2, 0]])


def _all_fields(split) -> str:
    parts = [t for t in (split.images, split.masks, split.labels, split.groups, split.spurious_masks) if t is not None]
    return hashlib.sha256(b"".join(t.numpy().tobytes() for t in parts)).hexdigest()[:16]


def test_decoy_samples_by_index_equal_the_split_made_whole_before():
    from harness.datasets import DecoyShapes

    dataset = DecoyShapes(image_size=16, n_test=40, n_train=24, seed=3)
    recorded = {"original": "fbbc309793494f13", "label_shade": "b7efbce1516d58bd", "no_patch": "66967df991398e8e"}  # before by-index
    assert isinstance(dataset, Streams) and _all_fields(dataset.split("train")) == "4b09649d869bfca6"
    picked = torch.tensor([39, 0, 17, 17, 5])
    for variant, digest in recorded.items():
        whole = dataset.split("test", variant)
        assert _all_fields(whole) == digest, variant
        alone = dataset.samples("test", picked, variant)
        for field in ("images", "masks", "labels", "groups", "spurious_masks"):
            assert torch.equal(getattr(alone, field), getattr(whole, field)[picked]), (variant, field)
        view = dataset.view("test", variant)
        assert torch.equal(view.labels, whole.labels) and torch.equal(view.groups, whole.groups)


def test_photos_are_resized_only_when_selected(monkeypatch):
    import harness.datasets.photos as photos

    dataset = photos.Photos(photos=["coffee", "astronaut"], image_size=20, labels="photos")
    assert isinstance(dataset, Streams) and _all_fields(dataset.split("test")) == "e3f06b06517be978"  # recorded before by-index
    assert _all_fields(photos.Photos(image_size=16).split("test")) == "f8517b748241bbb3"
    view, read = dataset.view("test"), []
    real = photos.photo
    monkeypatch.setattr(photos, "photo", lambda name: read.append(name) or real(name))
    one = view.select(torch.tensor([1]))
    assert read == ["astronaut"] and torch.equal(one.images, dataset.split("test").images[[1]]) and view.labels.tolist() == [0, 1]
