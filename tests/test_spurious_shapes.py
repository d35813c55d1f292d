import pytest
import torch

from harness.spurious_shapes import SpuriousShapes


def test_same_seed_same_bytes_and_other_seed_differs():
    a, b = SpuriousShapes(seed=3, n_train=64, n_test=32), SpuriousShapes(seed=3, n_train=64, n_test=32)
    for split in ("train", "test"):
        sa, sb = a.split(split), b.split(split)
        assert torch.equal(sa.images, sb.images) and torch.equal(sa.masks, sb.masks) and torch.equal(sa.labels, sb.labels)
    assert not torch.equal(a.split("train").images, SpuriousShapes(seed=4, n_train=64, n_test=32).split("train").images)


def test_masks_mark_exactly_the_drawn_pixels():
    # Without noise, a full-contrast foreground replaces the background exactly inside the mask.
    d = SpuriousShapes(seed=0, n_test=24, noise=0.0, foreground_contrast=1.0)
    drawn, bare = d.split("test"), d.split("test", "only_background")
    changed = (drawn.images != bare.images).any(1, keepdim=True)
    assert torch.equal(drawn.masks, bare.masks)
    assert not changed[~drawn.masks].any()        # nothing drawn outside the mask
    # Inside the mask the colour differs from the texture almost everywhere (equal only by colour coincidence).
    assert changed[drawn.masks].float().mean() > 0.99
    assert drawn.masks.flatten(1).any(1).all()    # every image has an object


def test_test_split_is_balanced_and_training_correlation_holds():
    d = SpuriousShapes(seed=0, n_classes=4, n_train=4000, n_test=64, spurious_correlation=0.8)
    test = d.split("test")
    counts = torch.bincount(test.labels * 4 + test.groups, minlength=16)
    assert torch.all(counts == 4)
    train = d.split("train")
    agree = (train.groups == train.labels).float().mean().item()
    assert abs(agree - 0.8) < 0.03


def test_background_variants_keep_the_foreground():
    d = SpuriousShapes(seed=1, n_test=32)
    original, other, same = d.split("test"), d.split("test", "other_class_background"), d.split("test", "same_class_background")
    assert torch.equal(original.masks, other.masks) and torch.equal(original.labels, other.labels)
    assert (other.groups != other.labels).all() and (same.groups == same.labels).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"spurious_correlation": 1.5}, "spurious_correlation must be in [0, 1]"),
    ({"n_classes": 9}, "n_classes must be between 2 and 6"),
    ({"std": [0.2, 0.0, 0.2]}, "std values must be positive"),
])
def test_bad_settings_fail_in_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        SpuriousShapes(**kwargs)
    assert "\n" not in str(info.value)
