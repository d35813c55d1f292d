"""Decoy shapes: the patch shade encodes the label in training only; masks mark the shape and the patch."""
import pytest
import torch

from harness.datasets import DecoyShapes


def _pixels(d, split):
    return d.denormalise(split.images)


def test_patch_shade_encodes_the_label_in_training_and_not_at_test():
    d = DecoyShapes(seed=0, n_train=400, n_test=64, noise=0.0)
    train, test = d.split("train"), d.split("test")
    assert torch.equal(train.groups, train.labels)                     # decoy_correlation = 1
    counts = torch.bincount(test.labels * 4 + test.groups, minlength=16)
    assert torch.all(counts == 4)                                       # test: every (class, shade) pair equally often
    for split in (train, test):
        pixels = _pixels(d, split)
        inside = split.spurious_masks
        shade = d.shade(split.groups)
        for i in range(len(split)):
            assert torch.allclose(pixels[i][inside[i]], shade[i].expand(int(inside[i].sum())), atol=1e-5)


def test_masks_are_exact_without_noise():
    d = DecoyShapes(seed=1, n_test=32, noise=0.0, foreground_contrast=1.0)
    split, bare = d.split("test"), d.split("test", "no_patch")
    pixels, plain = _pixels(d, split), _pixels(d, bare)
    assert not (split.masks & split.spurious_masks).any()              # the patch never covers the shape
    assert (plain[~split.masks] == 0).all()                             # background is black where no shape is drawn
    assert (plain[split.masks] >= 0.75 - 1e-6).all()                    # the shape is light
    changed = (pixels != plain)
    assert torch.equal(changed, split.spurious_masks & (pixels != 0))  # the patch changes exactly its own pixels
    area = split.spurious_masks.flatten(1).sum(1)
    assert area.le(16).all() and area.gt(0).all() and area.eq(16).float().mean() > 0.8  # a 4x4 patch, under the shape where they meet
    rows, cols = split.spurious_masks.any(3).squeeze(1), split.spurious_masks.any(2).squeeze(1)
    for i in area.eq(16).nonzero().flatten().tolist():                 # whole patches sit one pixel in from a corner
        r, c = rows[i].nonzero().flatten(), cols[i].nonzero().flatten()
        assert r.min().item() in (1, 28 - 4 - 1) and c.min().item() in (1, 28 - 4 - 1)


def test_label_shade_variant_and_seeding():
    d = DecoyShapes(seed=2, n_test=32)
    agree = d.split("test", "label_shade")
    assert torch.equal(agree.groups, agree.labels)
    assert torch.equal(d.split("test").masks, agree.masks)
    assert torch.equal(DecoyShapes(seed=2, n_test=32).split("train").images, d.split("train").images)
    assert not torch.equal(DecoyShapes(seed=3, n_test=32).split("train").images, d.split("train").images)


@pytest.mark.parametrize("kwargs, message", [
    ({"patch_size": 9}, "dataset.patch_size must be between 1 and image_size / 4 = 7 pixels; got 9"),
    ({"decoy_correlation": -0.5}, "dataset.decoy_correlation must be in [0, 1]; got -0.5"),
    ({"mean": [0.5, 0.5, 0.5]}, "dataset.mean and dataset.std need 1 values"),
])
def test_bad_settings_fail_in_one_line(kwargs, message):
    with pytest.raises(ValueError) as info:
        DecoyShapes(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
