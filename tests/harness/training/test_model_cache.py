"""Trained models are cached under a hash of what determines them and reused."""
import torch

from harness.build import build
from harness.cache import model_key as cache_key
from harness.training import trained_model


def _train(cfg, tmp_path):
    dataset = build(cfg.dataset, "dataset", seed=cfg.seed)
    train, test = dataset.split("train"), dataset.split("test")
    return trained_model(cfg.model, cfg.dataset, dataset, train, test, cfg.seed, tmp_path, torch.device("cpu"))


def test_second_call_reuses_the_cache_with_identical_weights(make_cfg, tmp_path):
    cfg = make_cfg()
    first, second = _train(cfg, tmp_path), _train(cfg, tmp_path)
    assert not first.cached and second.cached
    for (k, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert second.summary == first.summary


def test_key_changes_with_anything_that_determines_the_weights(make_cfg):
    base = make_cfg()
    key = cache_key(base.model, base.dataset, base.seed)
    assert cache_key(base.model, base.dataset, base.seed + 1) != key
    assert cache_key(make_cfg("model.training.epochs=2").model, base.dataset, base.seed) != key
    assert cache_key(base.model, make_cfg("dataset.spurious_correlation=0.5").dataset, base.seed) != key
    # The metric or method does not determine the weights.
    other = make_cfg("method=integrated_gradients", "metric=[deletion]")
    assert cache_key(other.model, other.dataset, other.seed) == key


def test_corrupt_cache_file_is_retrained_not_loaded(make_cfg, tmp_path):
    cfg = make_cfg()
    first = _train(cfg, tmp_path)
    path = tmp_path / "models" / f"{first.key}.pt"
    path.write_bytes(path.read_bytes()[:100])  # truncated, as after a crash mid-write elsewhere
    again = _train(cfg, tmp_path)
    assert not again.cached
    assert torch.equal(again.model.classifier.weight, first.model.classifier.weight)
    assert _train(cfg, tmp_path).cached
