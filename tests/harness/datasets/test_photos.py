"""Photos ship inside scikit-image and load offline, labelled with their ImageNet classes."""
import socket

import pytest
import torch

from harness.datasets import Photos, photos


def test_every_photo_loads_offline(monkeypatch):
    monkeypatch.setattr(socket, "socket", lambda *a, **k: (_ for _ in ()).throw(OSError("network used")))
    photos.photo.cache_clear()
    for name in photos.PHOTOS:
        pixels = photos.photo(name)
        assert pixels.shape[0] == 3 and min(pixels.shape[1:]) >= 256 and 0 <= pixels.min() and pixels.max() <= 1


def test_imagenet_labels_and_size():
    d = Photos(image_size=48)
    split = d.split("test")
    assert split.images.shape == (5, 3, 48, 48) and d.num_classes == 1000
    assert [d.class_names[i] for i in split.labels] == ["suit", "tabby", "espresso", "missile", "motor scooter"]
    assert torch.allclose(d.denormalise(split.images).amin(), torch.tensor(0.0), atol=0.05)  # stats travel with the data


def test_photos_as_their_own_classes():
    d = Photos(photos=["chelsea", "coffee"], image_size=32, labels="photos")
    assert d.class_names == ["chelsea", "coffee"] and d.split("train").labels.tolist() == [0, 1]


@pytest.mark.parametrize("kwargs, message", [
    ({"photos": ["chelsea", "lena"]}, "dataset.photos has unknown photo 'lena'; allowed: astronaut, chelsea, coffee, rocket, motorcycle"),
    ({"labels": "coco"}, "dataset.labels must be one of imagenet, photos; got 'coco'"),
])
def test_bad_settings_fail_in_one_line(kwargs, message):
    with pytest.raises(ValueError) as info:
        Photos(**kwargs)
    assert message in str(info.value)
