"""A tiny sweep in a temporary MLflow store, logged in run_log's format (scores.csv, curves/, tags), without training anything.

Three methods (``good``, ``random`` and ``twin``, the same maps as ``random`` and so the same scores) x two
metrics (``insertion``, higher is better, with curves; ``deletion``, lower is better) x two seeds, 12 samples.
"""
from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import torch
from mlflow.tracking import MlflowClient

from harness import reports, tracking
from metrics import MetricResult

METHODS = ("good", "random", "twin")
SEEDS = (0, 1)
N = 12


def results_for(method: str, seed: int) -> dict[str, MetricResult]:
    gen = torch.Generator().manual_seed(100 + seed)  # random and twin: the same draws
    base = torch.rand(N, generator=gen, dtype=torch.float64)
    shift = 0.3 if method == "good" else 0.0
    x = torch.linspace(0, 1, 5, dtype=torch.float64)
    insertion = (0.4 + shift + 0.2 * base).clamp(0, 1)
    curves = insertion[:, None] * x[None, :] ** 0.5
    deletion = (0.6 - shift + 0.2 * base).clamp(0, 1)
    return {"insertion": MetricResult(insertion, higher_is_better=True, curves=curves, curve_x=x),
            "deletion": MetricResult(deletion, higher_is_better=False)}


EXPERIMENT = "report-tiny"


def build(root, store=None) -> tuple[str, str]:
    """(tracking uri, parent run id) of the sweep, in experiment ``report-tiny`` of the SQLite store in folder ``store``
    (default ``root``; the tests share the session's store, creating one costs seconds), artifacts under ``root``."""
    uri = f"sqlite:///{Path(store or root) / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.create_experiment(EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
    parent = client.create_run(experiment, tags={"harness.sweep": "true"}).info.run_id
    job = 0
    for method in METHODS:
        for seed in SEEDS:
            results = results_for(method, seed)
            tags = {"mlflow.parentRunId": parent, "harness.method": method, "harness.model": "toy", "harness.dataset": "shapes",
                    "harness.metrics": "insertion,deletion", "harness.overrides": f"method={method} seed={seed} eval.n_samples=12",
                    "harness.job": str(job), "harness.config_hash": f"{method}-{seed}"}
            if method == "twin":
                tags["harness.warnings"] = "twin: a warning raised during the run"
            with mlflow.start_run(experiment_id=experiment, tags=tags) as run:
                mlflow.log_params({"seed": seed, "dataset.n_classes": 4} | tracking.choice_params({"method": method, "model": "toy", "dataset": "shapes"}))
                summary = reports.summary(results, seed=seed)
                model = {"test_accuracy": 0.9, "worst_group_accuracy": 0.7, "test_accuracy/bg_gap": 0.1}
                tracking.log_batch(run.info.run_id, model | dict(zip(summary["metric"], summary["value"])))
                client.log_batch(run.info.run_id, tags=[mlflow.entities.RunTag(k, v) for k, v in tracking.run_log.metric_tags(summary).items()])
                frame = pd.DataFrame({"index": range(N), "label": [i % 4 for i in range(N)]})
                tracking.log_text_frame(tracking.scores_table(results, frame), "scores.csv")
                tracking.log_text_frame(tracking.curve_table(results["insertion"]), "curves/insertion.csv")
                maps = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
                masks = torch.zeros(3, 1, 8, 8)
                masks[:, :, 2:6, 2:6] = 1
                tracking.run_log.log_heatmap_data(torch.rand(3, 3, 8, 8), maps, masks)
            job += 1
    failed = client.create_run(experiment, tags={"mlflow.parentRunId": parent, "harness.method": "broken"}).info.run_id
    client.set_terminated(failed, "FINISHED")  # finished, yet without scores.csv: named and skipped
    client.set_terminated(parent, "FINISHED")
    return uri, parent
