"""The report's trust sections (harness/report/trust.py): dropped samples per metric and the meta-evaluation beside the leaderboard."""
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from harness import tracking
from harness.report import collect, trust


@pytest.mark.slow
def test_dropped_counts_and_the_experiments_meta_evaluation_are_reported(harness_home, tmp_path):
    uri = f"sqlite:///{Path(harness_home) / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = MlflowClient(uri).create_experiment("report-trust", artifact_location=(tmp_path / "artifacts").as_uri())
    tags = {"harness.method": "gradcam", "harness.metrics": "deletion,randomization", "harness.config_hash": "a",
            "harness.dropped.randomization": "constant original map: 2; misclassified: 1"}
    with mlflow.start_run(experiment_id=experiment, tags=tags):
        tracking.log_text_frame(pd.DataFrame({"index": range(4), "deletion": [0.1, 0.2, 0.3, 0.4],
                                              "randomization": [0.5, float("nan"), float("nan"), float("nan")]}), "scores.csv")
    summary = pd.DataFrame({"metric": ["deletion", "complexity"], "n": [8, 8], "minor_agreement": [1.0, 1.0], "iac_nr": [0.2, 0.9],
                            "iac_ar": [1.0, 0.5], "iec_nr": [0.9, 1.0], "iec_ar": [1.0, 0.25], "mc": [0.775, 0.6625],
                            "mc_ci_low": [0.7, 0.6], "mc_ci_high": [0.85, 0.72]})
    with mlflow.start_run(experiment_id=experiment, tags={"harness.kind": "meta_evaluation", "harness.methods": "saliency,random",
                                                          "harness.meta_space": "model"}):
        tracking.log_text_frame(summary, "meta/summary.csv")
    collection = collect("report-trust", uri)
    text = trust.trust_section(collection, ["deletion", "randomization"], tmp_path)
    drops = pd.read_csv(tmp_path / "dropped.csv")
    assert drops[["metric", "reason", "dropped", "samples"]].values.tolist() == [
        ["randomization", "constant original map", 2, 4], ["randomization", "misclassified", 1, 4]]
    assert "| gradcam | randomization | constant original map | 2 | 4 |" in text
    meta = pd.read_csv(tmp_path / "meta_evaluation.csv")
    assert meta["metric"].tolist() == ["deletion", "complexity"] and set(meta["space"]) == {"model"}
    assert "| deletion * | model | 0.775 [0.700, 0.850] |" in text and "| complexity | model |" in text


def test_no_drops_and_no_meta_evaluation_say_so():
    empty = pd.DataFrame(columns=["run", "method", "metric", "reason", "dropped", "samples"])
    text = trust.markdown(empty, pd.DataFrame(), [])
    assert "No metric dropped a sample" in text and "Meta-evaluation" not in text
