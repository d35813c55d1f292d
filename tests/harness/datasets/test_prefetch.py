"""Prefetched evaluation batches (issue 17): worker processes make them ahead, in the seeded order, with equal contents."""
import pytest
import torch

from harness.datasets import ImageSplit, SpuriousShapes, prefetched


def _same(a: ImageSplit, b: ImageSplit) -> bool:
    return torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) and torch.equal(a.masks, b.masks)


@pytest.mark.parametrize("lazy", [pytest.param(True, marks=pytest.mark.slow), False])  # lazy: ~3 s of drawing shapes
def test_prefetched_batches_come_in_order_and_equal_the_sequential_ones(lazy):
    dataset = SpuriousShapes(image_size=16, n_train=8, n_test=12)
    split = dataset.view("test") if lazy else dataset.split("test")
    batches = torch.randperm(12, generator=torch.Generator().manual_seed(3)).split(5)  # a seeded draw, last batch short
    state = torch.random.get_rng_state()
    ahead = list(prefetched(split, batches, num_workers=2))
    assert torch.equal(torch.random.get_rng_state(), state)  # the run's global generator is left alone
    plain = list(prefetched(split, batches))
    assert [idx.tolist() for idx, _ in ahead] == [idx.tolist() for idx in batches] == [idx.tolist() for idx, _ in plain]
    assert all(_same(a, b) for (_, a), (_, b) in zip(ahead, plain))
    assert _same(plain[1][1], split.select(batches[1]))
    with pytest.raises(ValueError, match="num_workers must be an integer >= 0"):
        next(prefetched(split, batches, num_workers=-1))


def test_the_worker_count_is_not_part_of_a_runs_identity(make_cfg):
    from harness.cache import config_hash

    assert config_hash(make_cfg("eval.num_workers=2")) == config_hash(make_cfg())  # resume and shard grouping ignore it
    assert config_hash(make_cfg("eval.batch_size=2")) != config_hash(make_cfg())
