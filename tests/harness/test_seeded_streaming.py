"""Stochastic explainers in a streamed, sharded run (issue 17): their maps and per-sample scores do not depend on
``eval.batch_size`` or ``eval.shards``, because each sample draws from (run seed, its test-split index).

Every stochastic explainer is checked at the method level in ``tests/methods/test_per_sample_seeding.py``; here
the runner's path end to end (the ``random`` control, which used to repeat its maps every batch, and EG):
the ids it gives the attribution cache and the metrics that re-explain (max-sensitivity),
and Expected Gradients' ``background=train`` route; the sharded runs also prefetch their batches (``eval.num_workers=1``).
"""
import pytest
import torch

import harness.runner as runner
from harness.runner import run

METRICS = ("metric=[deletion,max_sensitivity]", "metric.max_sensitivity.n_samples=2", "cache.attributions=false")
METHODS = {
    "random": ("method=random",),
    "expected_gradients_train": ("method=expected_gradients", "method.background=train", "method.n_background=16", "method.n_samples=4"),
}


def _maps(monkeypatch) -> dict[int, torch.Tensor]:
    """Record every map the runner computes, by test-split index."""
    real, seen = runner.cached_attribution_batch, {}

    def recording(cfg, explainer, model, key, inputs, targets, indices, device, cache_dir):
        maps, hit = real(cfg, explainer, model, key, inputs, targets, indices, device, cache_dir)
        seen.update({int(i): m.cpu() for i, m in zip(indices, maps)})
        return maps, hit

    monkeypatch.setattr(runner, "cached_attribution_batch", recording)
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("method", list(METHODS))
def test_stochastic_maps_and_scores_do_not_depend_on_batch_size_or_shards(method, make_cfg, monkeypatch):
    settings = (*METHODS[method], *METRICS, f"tracking.experiment=seeded-{method}")
    whole_maps = _maps(monkeypatch)
    whole = run(make_cfg("eval.batch_size=8", *settings))  # one batch of 8
    shard_maps = _maps(monkeypatch)
    for shard in range(3):  # 3, 3 and 2 samples, streamed in batches of 2, made one worker process ahead
        part = run(make_cfg("eval.batch_size=2", "eval.shards=3", f"eval.shard={shard}", "eval.num_workers=1", *settings))
        rows = torch.arange(8)[shard::3]
        for name, result in whole.results.items():
            torch.testing.assert_close(part.results[name].scores, result.scores[rows], rtol=1e-5, atol=1e-6, equal_nan=True)
    assert sorted(shard_maps) == sorted(whole_maps) and len(whole_maps) == 8
    for index, maps in whole_maps.items():
        torch.testing.assert_close(shard_maps[index], maps, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(*[whole_maps[i] for i in sorted(whole_maps)[:2]])  # two samples, two draws
