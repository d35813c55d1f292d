"""A whole run through the runner: what reaches MLflow, determinism, failures."""
import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from harness.runner import run


def _artifacts(client, run_id, path=""):
    out = []
    for item in client.list_artifacts(run_id, path):
        out += _artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return out


def test_run_logs_config_metrics_scores_curves_and_heatmaps(make_cfg):
    cfg = make_cfg()
    outcome = run(cfg)
    client = MlflowClient()
    logged = client.get_run(outcome.run_id)
    assert logged.info.status == "FINISHED"
    assert {"deletion", "insertion", "test_accuracy", "deletion_ci_low", "insertion_ci_high"} <= set(logged.data.metrics)
    assert logged.data.params["dataset.spurious_correlation"] == str(cfg.dataset.spurious_correlation)
    assert logged.data.params["method._target_"] == "methods.saliency.Saliency"
    assert logged.data.tags["harness.method"] == "Saliency"
    assert logged.data.params["method"] == "Saliency" and logged.data.params["seed"] == str(cfg.seed)  # plain params to group by
    assert logged.data.tags["harness.better.deletion"] == "lower" and logged.data.tags["harness.better.insertion"] == "higher"
    assert "| deletion |" in logged.data.tags["mlflow.note.content"]
    assert client.get_experiment(logged.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    assert "worst_group_accuracy" in logged.data.metrics and not any(k.startswith("group_accuracy/") for k in logged.data.metrics)
    artifacts = set(_artifacts(client, outcome.run_id))
    assert {"config.yaml", "group_accuracy.csv", "scores.csv", "curves/deletion.csv", "curves/insertion.csv", "heatmaps.png", "heatmaps.npz"} <= artifacts
    scores = pd.read_csv(client.download_artifacts(outcome.run_id, "scores.csv"))
    assert len(scores) == cfg.eval.n_samples
    assert scores["deletion"].mean() == pytest.approx(logged.data.metrics["deletion"], rel=1e-5)
    history = client.get_metric_history(outcome.run_id, "deletion_curve")
    curves = pd.read_csv(client.download_artifacts(outcome.run_id, "curves/deletion.csv"))
    assert len(history) == len(curves) and curves["x"].iloc[0] == 0 and curves["x"].iloc[-1] == 1


def test_same_command_gives_same_numbers_and_reuses_the_model(make_cfg):
    cfg = make_cfg("method=integrated_gradients", "method.n_steps=8")
    first, second = run(cfg), run(cfg)
    assert first.headline() == second.headline()
    assert MlflowClient().get_run(second.run_id).data.tags["harness.model_cache"] == "hit"


def test_metric_multiselect_scores_one_set_of_attributions(make_cfg):
    outcome = run(make_cfg("metric=[insertion]"))
    assert list(outcome.results) == ["insertion"]


def test_failing_job_is_recorded_failed_with_its_traceback(make_cfg):
    cfg = make_cfg("~method", "+method._target_=tests.exploding.ExplodingExplainer")
    with pytest.raises(RuntimeError, match="deliberate failure"):
        run(cfg)
    client = MlflowClient()
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`harness.method` = 'ExplodingExplainer'", output_format="list")
    assert runs and all(r.info.status == "FAILED" for r in runs)
    text = open(client.download_artifacts(runs[0].info.run_id, "error.txt")).read()
    assert "deliberate failure inside the explainer" in text
