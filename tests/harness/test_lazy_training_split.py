"""The training split of a command-line run is made or loaded only when something needs it whole, and a rerun at another
batch size reuses the cached maps (issue 17)."""
import pytest
import torch
from mlflow.tracking import MlflowClient

import harness.cache.stages as stages
from harness.build import build
from harness.cache import SplitSource
from harness.runner import TRAINING_SPLIT_TAG, run
from harness.training import trained_model


@pytest.fixture
def splits_read(monkeypatch) -> list[str]:
    """The names of the splits read whole (made, or loaded from the datasets cache) from now on."""
    real, names = stages.cached_split, []

    def spy(cfg, dataset, name, cache_dir):
        names.append(name)
        return real(cfg, dataset, name, cache_dir)

    monkeypatch.setattr(stages, "cached_split", spy)
    return names


@pytest.mark.slow
def test_a_cached_model_never_reads_the_training_split_and_a_checkpoint_streams_it(make_cfg, splits_read):
    settings = ("method=random", "metric=[deletion]", "metric.deletion.steps=0.5", "eval.n_samples=4", "tracking.experiment=lazy-train")
    first = run(make_cfg(*settings, "eval.batch_size=4"))   # trains (or finds) the model: the summary is cached with it
    splits_read.clear()
    again = run(make_cfg(*settings, "eval.batch_size=2"))
    tags = MlflowClient().get_run(again.run_id).data.tags
    assert tags["harness.model_cache"] == "hit" and tags[TRAINING_SPLIT_TAG] == "not read" and "train" not in splits_read
    assert again.model_summary == first.model_summary
    # the stochastic control's maps, stored in batches of 4, are found per sample in batches of 2
    assert tags["harness.attribution_cache"] == "hit" and torch.equal(again.results["deletion"].scores, first.results["deletion"].scores)
    # the same weights as a checkpoint: the summary's train accuracy streams the split by index, batch by batch
    path = stages.store(make_cfg().paths.cache, "models").path(tags["harness.model_key"])  # the cache file holds the state dict
    cfg = make_cfg(f"model.weights={path}")
    dataset = build(cfg.dataset, "dataset", seed=cfg.seed)
    train, test = SplitSource(cfg, dataset, "train", path.parent), dataset.view("test")
    loaded = trained_model(cfg.model, cfg.dataset, dataset, train, test, cfg.seed, path.parent, torch.device("cpu"))
    assert loaded.source.startswith("loaded from") and not train.loaded and "train" not in splits_read
    assert loaded.summary == pytest.approx(first.model_summary)


def test_split_source_selects_by_index_without_reading_the_split(make_cfg, splits_read, tmp_path):
    cfg = make_cfg()
    dataset = build(cfg.dataset, "dataset", seed=cfg.seed)
    source = SplitSource(cfg, dataset, "train", tmp_path)
    picked = torch.tensor([200, 3, 17])
    some = source.select(picked)
    assert len(source) == cfg.dataset.n_train and not source.loaded and not splits_read
    whole = source.whole()
    assert source.loaded and splits_read == ["train"]
    assert torch.equal(some.images, whole.images[picked]) and torch.equal(some.labels, whole.labels[picked])
