"""A user's folder of class folders: classes, masks, splits, and bad files named in one line."""
import numpy as np
import pytest
import torch
from PIL import Image

from harness.datasets import ImageFolder


def _write(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _folder(tmp_path, n=5, size=20, with_masks=True):
    """Class 'dark' images are 40 grey, class 'light' 200; each has a white square mask at a known place."""
    root, masks = tmp_path / "images", tmp_path / "masks"
    for cls, value in (("dark", 40), ("light", 200)):
        for i in range(n):
            _write(root / cls / f"img{i}.png", np.full((size, size, 3), value, dtype=np.uint8))
            if with_masks:
                mask = np.zeros((size, size), dtype=np.uint8)
                mask[i: i + 5, 2:8] = 255
                _write(masks / cls / f"img{i}.png", mask)
    return root, masks


def test_classes_labels_pixels_and_masks(tmp_path):
    root, masks = _folder(tmp_path)
    d = ImageFolder(root, image_size=20, masks_root=masks, test_fraction=0.4, mean=[0, 0, 0], std=[1, 1, 1])
    assert d.class_names == ["dark", "light"] and d.num_classes == 2
    train, test = d.split("train"), d.split("test")
    assert len(train) == 6 and len(test) == 4 and sorted(test.labels.tolist()) == [0, 0, 1, 1]
    for split in (train, test):
        expected = torch.where(split.labels == 0, 40 / 255, 200 / 255).view(-1, 1, 1, 1)
        assert torch.allclose(split.images, expected.expand_as(split.images), atol=1e-5)
        assert split.masks.shape == (len(split), 1, 20, 20) and split.masks.flatten(1).sum(1).eq(30).all()
    # the same seed draws the same split; the splits do not overlap
    again = ImageFolder(root, image_size=20, masks_root=masks, test_fraction=0.4)
    assert again.files == d.files
    assert not {f[0] for f in d.files["train"]} & {f[0] for f in d.files["test"]}


def test_presplit_folders_are_used_as_they_are(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                _write(tmp_path / split / cls / f"{i}.jpg", np.zeros((8, 12, 3), dtype=np.uint8))
    d = ImageFolder(tmp_path, image_size=8)
    assert len(d.split("train")) == 6 and len(d.split("test")) == 4 and d.split("test").masks is None


def test_unreadable_images_are_named_in_one_line_or_skipped(tmp_path):
    for split in ("train", "test"):
        for cls in ("a", "b"):
            for i in range(3):
                noise = np.random.default_rng(i).integers(0, 256, (16, 16, 3), dtype=np.uint8)  # incompressible
                _write(tmp_path / split / cls / f"{i}.png", noise)
    truncated = tmp_path / "test" / "b" / "1.png"
    truncated.write_bytes(truncated.read_bytes()[:400])      # cut off mid-file, as after a failed copy
    notes = tmp_path / "test" / "a" / "notes.png"
    notes.write_text("not an image")
    with pytest.raises(ValueError) as info:                   # building reads every file's header: cheap, and caught before any run
        ImageFolder(tmp_path, image_size=8)
    assert str(info.value) == f"dataset: file {notes} is not an image (unknown header); fix or remove it, or set dataset.on_error=skip"
    notes.unlink()
    with pytest.raises(ValueError) as info:                   # its PNG end chunk is missing: found by building too, without decoding the rest
        ImageFolder(tmp_path, image_size=8)
    message = str(info.value)
    assert message.startswith(f"dataset: cannot read image {truncated} (") and "\n" not in message
    assert "dataset.on_error=skip" in message
    notes.write_bytes(b"")
    with pytest.warns(UserWarning, match="notes.png is empty"), pytest.warns(UserWarning, match="cannot read image .*1.png"):
        skipping = ImageFolder(tmp_path, image_size=8, on_error="skip")
    assert skipping.split("test").labels.tolist() == [0, 0, 0, 1, 1]   # notes.png and the truncated 1.png left out


def test_a_one_class_folder_and_a_mask_of_another_size_are_one_line_when_built(tmp_path):
    root, masks = _folder(tmp_path, n=3)
    _write(masks / "light" / "img1.png", np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"mask .*light/img1.png is 10x10 but its image .* is 20x20; allowed: a mask of the image's own size"):
        ImageFolder(root, image_size=8, masks_root=masks, test_fraction=0.4)  # from the headers, before any run
    with pytest.warns(UserWarning, match="skipping: dataset: mask .*img1.png is 10x10"):
        skipping = ImageFolder(root, image_size=8, masks_root=masks, test_fraction=0.4, on_error="skip")
    assert len(skipping.files["train"]) + len(skipping.files["test"]) == 5
    for path in (root / "light").iterdir():
        path.unlink()
    (root / "light").rmdir()
    with pytest.raises(ValueError, match=r"has 1 class folder \(dark\); allowed: at least 2 classes"):
        ImageFolder(root, image_size=8)


def test_a_truncated_jpeg_is_named_when_built_and_a_trailer_after_its_end_is_fine(tmp_path):
    root, _ = _folder(tmp_path, with_masks=False)
    bad = root / "light" / "img3.jpg"
    _write(bad, np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8))
    whole = bad.read_bytes()
    bad.write_bytes(whole[:500])                              # no end marker FFD9
    with pytest.raises(ValueError, match=f"dataset: cannot read image {bad} .*; fix or remove it, or set dataset.on_error=skip"):
        ImageFolder(root, image_size=16, test_fraction=0.2)
    bad.write_bytes(whole + b"camera notes " * 20)            # complete, with a trailer longer than the tail read: decoded, accepted
    d = ImageFolder(root, image_size=16, test_fraction=0.2)
    assert any(f[0] == bad for s in d.SPLITS for f in d.files[s])


def test_masks_beside_the_root_are_found_and_each_file_is_checked_once_per_process(tmp_path, monkeypatch):
    root, masks = _folder(tmp_path, n=2)
    masks.rename(tmp_path / "images_masks")                   # the convention: <root>_masks beside root
    d = ImageFolder(root, image_size=8, test_fraction=0.5, mean=[0, 0, 0], std=[1, 1, 1])
    assert d.has_masks and d.masks_root == tmp_path / "images_masks" and d.split("test").masks.shape == (2, 1, 8, 8)
    looked = []
    monkeypatch.setattr(ImageFolder, "file_problem", lambda self, path: looked.append(path))
    ImageFolder(root, image_size=8, test_fraction=0.5)
    assert looked == []                                       # remembered by path, size and mtime
    _write(root / "dark" / "img0.png", np.full((20, 20, 3), 41, dtype=np.uint8))
    ImageFolder(root, image_size=8, test_fraction=0.5)
    assert looked == [root / "dark" / "img0.png", tmp_path / "images_masks" / "dark" / "img0.png"]


@pytest.mark.parametrize("setup, kwargs, message", [
    (lambda p: None, {"root": "/nonexistent/pics"}, "dataset.root: no folder at /nonexistent/pics"),
    (lambda p: (p / "empty").mkdir(), {"root": "ROOT/empty"}, "has no class folders; expected"),
    (lambda p: _folder(p, with_masks=False), {"root": "ROOT/images", "masks_root": "ROOT"}, "dataset.masks_root: no mask for"),
    (lambda p: _folder(p), {"root": "ROOT/images", "on_error": "ignore"}, "dataset.on_error must be one of raise, skip; got 'ignore'"),
])
def test_bad_folders_fail_at_construction_in_one_line(tmp_path, setup, kwargs, message):
    setup(tmp_path)
    kwargs = {k: v.replace("ROOT", str(tmp_path)) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(ValueError) as info:
        ImageFolder(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
