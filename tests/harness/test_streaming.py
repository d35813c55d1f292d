"""Streamed evaluation (issue 17): batches give the in-memory numbers, shards merge into the whole run, a stopped run keeps its scores."""
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

import harness.runner as runner
from harness.report.load import collect
from harness.runner import PARTIAL_SCORES, PROGRESS_TAG, run, shard_indices


def _scores(outcome) -> dict[str, torch.Tensor]:
    return {name: result.scores for name, result in outcome.results.items()}


def test_shards_are_disjoint_and_cover_the_draw():
    picked = torch.tensor([1, 4, 5, 9, 12, 20, 31])
    parts = [shard_indices(picked, 3, i) for i in range(3)]
    assert sorted(torch.cat(parts).tolist()) == picked.tolist()
    assert shard_indices(picked).tolist() == picked.tolist()
    with pytest.raises(ValueError, match="eval.shard must be in"):
        shard_indices(picked, 3, 3)


@pytest.mark.slow
def test_streamed_sharded_runs_equal_the_in_memory_run(make_cfg):
    settings = ("metric=[deletion,spurious_background]",)
    whole = run(make_cfg("eval.batch_size=8", "tracking.experiment=stream-whole", *settings))  # one batch: everything in memory
    index = torch.tensor(pd.read_csv(MlflowClient().download_artifacts(whole.run_id, "scores.csv"))["index"].to_numpy())
    for shard in range(3):  # 3, 3 and 2 samples, streamed in batches of 2
        part = run(make_cfg("eval.batch_size=2", "eval.shards=3", f"eval.shard={shard}", "tracking.experiment=stream-shards", *settings))
        rows = torch.arange(8)[shard::3]
        for name, result in whole.results.items():
            assert torch.allclose(part.results[name].scores, result.scores[rows], atol=1e-6, equal_nan=True), name
        assert torch.allclose(part.results["deletion"].curves, whole.results["deletion"].curves[rows], atol=1e-6)
    merged, reference = collect("stream-shards"), collect("stream-whole").scores
    assert len(merged.runs) == 1 and not merged.skipped
    for name in whole.results:
        got = merged.scores[merged.scores.metric == name]
        want = reference[reference.metric == name]
        assert got["sample"].tolist() == want["sample"].tolist() == index.tolist()
        assert got["score"].to_numpy() == pytest.approx(want["score"].to_numpy(), abs=1e-6, nan_ok=True), name


@pytest.mark.slow
def test_a_run_stopped_half_way_keeps_its_scores_and_a_rerun_reuses_its_batches(make_cfg, monkeypatch):
    cfg = make_cfg("eval.batch_size=2", "metric=[deletion]", "eval.target=label", "tracking.experiment=stream-killed")  # maps no other test caches
    real, calls = runner.cached_attribution_batch, []

    def stop_at_the_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise runner.Terminated("received signal SIGTERM")
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "cached_attribution_batch", stop_at_the_third_batch)
    with pytest.raises(runner.Terminated):
        run(cfg)
    client = MlflowClient()
    stopped = client.search_runs([client.get_experiment_by_name("stream-killed").experiment_id])[0]
    assert stopped.info.status == "KILLED" and stopped.data.tags[PROGRESS_TAG] == "4/8 samples scored"
    partial = pd.read_csv(client.download_artifacts(stopped.info.run_id, PARTIAL_SCORES))
    assert len(partial) == 4 and partial["deletion"].notna().all()
    assert not collect("stream-killed").runs.shape[0]  # never counted as a result
    monkeypatch.setattr(runner, "cached_attribution_batch", real)
    again = run(cfg)
    tags = client.get_run(again.run_id).data.tags
    assert tags["harness.attribution_cache"] == "2 of 4 batches reused" and tags[PROGRESS_TAG].startswith("complete: 8/8")
