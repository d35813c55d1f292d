"""A run that took a setting from its YAML and one that overrode it with the same value are in one block.

Found on the roar experiment: ``random`` ran from the experiment file, the other methods with command-line
overrides of the same values, and the report put ``random`` in another block (no paired comparison).
"""
import os

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from harness import tracking
from harness.report import collect
from tests.harness.report.sweep_store import N, results_for


def _log(client, experiment, method, overrides, n_samples):
    tags = {"harness.method": method, "harness.model": "toy", "harness.dataset": "shapes", "harness.metrics": "insertion,deletion",
            "harness.overrides": overrides, "harness.config_hash": f"{method}-{overrides}-{n_samples}"}
    with mlflow.start_run(experiment_id=experiment, tags=tags):
        mlflow.log_params({"seed": 0, "eval.n_samples": n_samples, "model.training.random_labels": False})
        frame = pd.DataFrame({"index": range(N), "label": [i % 4 for i in range(N)]})
        tracking.log_text_frame(tracking.scores_table(results_for(method, 0), frame), "scores.csv")


def test_a_yaml_value_and_an_equal_override_are_one_block_and_a_different_value_is_swept(tmp_path):
    uri, before = f"sqlite:///{tmp_path / 'mlflow.db'}", mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        _check(uri, tmp_path)
    finally:  # mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI: leave the other tests their own store
        mlflow.set_tracking_uri(before)
        os.environ.pop("MLFLOW_TRACKING_URI", None)


def _check(uri, tmp_path):
    client = MlflowClient(uri)
    same = client.create_experiment("same-values", artifact_location=(tmp_path / "a").as_uri())
    _log(client, same, "good", "method=good eval.n_samples=12 model.training.random_labels=false", 12)
    _log(client, same, "random", "method=random", 12)                      # the same values, from its YAML
    assert collect("same-values", uri=uri).swept == []
    other = client.create_experiment("other-values", artifact_location=(tmp_path / "b").as_uri())
    _log(client, other, "good", "method=good eval.n_samples=12", 12)
    _log(client, other, "random", "method=random", 8)                       # another value: a block of its own
    found = collect("other-values", uri=uri)
    assert found.swept == ["eval.n_samples"] and sorted(found.runs["eval.n_samples"]) == ["12", "8"]
