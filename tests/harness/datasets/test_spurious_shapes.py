import pytest
import torch

from harness.datasets import SpuriousShapes


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


def test_each_environment_shows_its_own_texture_and_colours():
    # Without foreground or noise, an only_background image is exactly its environment's palette blend.
    from harness.datasets.spurious_shapes import PALETTE
    d = SpuriousShapes(seed=0, n_classes=4, n_test=16, noise=0.0, backgrounds=["grass", "stripes", "brick", "checker"])
    bare = d.denormalise(d.split("test", "only_background").images)
    groups = d.split("test").groups
    for g in range(4):
        pixels = bare[groups == g].permute(1, 0, 2, 3).flatten(1)            # (3, pixels)
        low, high = PALETTE[g, 0].view(3, 1), PALETTE[g, 1].view(3, 1)
        t = (pixels - low) / (high - low)                                     # the grey level, same in every channel
        assert torch.allclose(t, t[:1].expand_as(t), atol=1e-4)
        assert t.min() >= -1e-5 and t.max() <= 1 + 1e-5
    assert d.group_names == ["grass", "stripes", "brick", "checker"]
    # Procedural textures are binary, natural ones continuous.
    t_stripes = (bare[groups == 1][:, 0] - PALETTE[1, 0, 0]) / (PALETTE[1, 1, 0] - PALETTE[1, 0, 0])
    assert set(t_stripes.round(decimals=4).unique().tolist()) <= {0.0, 1.0}
    t_grass = (bare[groups == 0][:, 0] - PALETTE[0, 0, 0]) / (PALETTE[0, 1, 0] - PALETTE[0, 0, 0])
    assert t_grass.round(decimals=3).unique().numel() > 50


def test_training_groups_follow_the_correlation_at_the_extremes():
    d1 = SpuriousShapes(seed=0, n_train=500, n_test=16, spurious_correlation=1.0)
    train = d1.split("train")
    assert torch.equal(train.groups, train.labels)
    d0 = SpuriousShapes(seed=0, n_train=500, n_test=16, spurious_correlation=0.0)
    train = d0.split("train")
    assert not (train.groups == train.labels).any()


@pytest.mark.parametrize("kwargs, message", [
    ({"backgrounds": ["grass", "marble", "brick", "dots"]}, "dataset.backgrounds has unknown texture 'marble'; allowed: grass, gravel, brick, stripes"),
    ({"backgrounds": ["grass", "gravel"]}, "dataset.backgrounds needs at least 4 textures (one per environment); got 2"),
    ({"backgrounds": ["grass", "grass", "brick", "dots"]}, "dataset.backgrounds lists a texture twice"),
    ({"image_size": 8}, "dataset.image_size must be between 16 and 512 pixels; got 8"),
])
def test_bad_backgrounds_fail_in_one_line(kwargs, message):
    with pytest.raises(ValueError) as info:
        SpuriousShapes(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
