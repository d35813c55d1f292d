"""Hydra callback that gives a multirun one parent MLflow run and prints the comparison.

``on_multirun_start`` runs in the launching process: it checks the tracking store,
creates the experiment once (parallel creation races, mlflow#979) and the parent
run, and exports the parent's id in ``HARNESS_PARENT_RUN_ID`` for the jobs, which
open their runs as its children. ``on_multirun_end`` prints and logs the table of
jobs and closes the parent. Hydra skips ``on_multirun_end`` when a job fails, so an
``atexit`` handler closes the parent as FAILED (with the table) in that case.
"""
from __future__ import annotations

import atexit
import os
from typing import Any

import mlflow
from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from harness import report, tracking


def _user_config(config: DictConfig) -> DictConfig:
    """The config without its ``hydra`` node (resolving that node can fail outside a job)."""
    data = OmegaConf.to_container(config, resolve=False)
    data.pop("hydra", None)
    return OmegaConf.create(data)


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        self.uri: str | None = None
        self.parent_id: str | None = None
        self.experiment_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        cfg = _user_config(config)
        self.uri = tracking.tracking_uri(cfg)
        tracking.check_tracking(self.uri)
        self.experiment_id = tracking.experiment_id(self.uri, cfg.tracking.experiment, tracking.artifact_root(cfg, self.uri))
        client = MlflowClient(self.uri)
        overrides = " ".join(config.hydra.overrides.task) if "hydra" in config else ""
        parent = client.create_run(self.experiment_id, run_name=f"sweep {overrides}"[:250],
                                   tags={"harness.sweep": "true", "harness.overrides": overrides})
        self.parent_id = parent.info.run_id
        client.log_text(self.parent_id, OmegaConf.to_yaml(cfg), "sweep_config.yaml")
        os.environ[tracking.PARENT_RUN_ENV] = self.parent_id
        os.environ["MLFLOW_TRACKING_URI"] = self.uri  # workers (joblib, submitit) log to the same store
        atexit.register(self._close, "FAILED")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._close("FINISHED")

    def table(self, parent_id: str):
        runs = mlflow.search_runs(
            experiment_ids=[self.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
            output_format="pandas",
        )
        return report.sweep_table(runs)

    def _close(self, status: str) -> None:
        if self.parent_id is None:
            return
        parent_id, self.parent_id = self.parent_id, None  # close once: on_multirun_end or atexit
        mlflow.set_tracking_uri(self.uri)
        table = self.table(parent_id)
        failed = (table["status"] != "FINISHED").sum() if not table.empty else 0
        if failed:
            status = "FAILED"
        client = MlflowClient(self.uri)
        if not table.empty:
            client.log_text(parent_id, table.to_csv(index=False), "sweep_table.csv")
            print(f"\nSweep {parent_id}: {len(table)} jobs, {failed} not finished\n{table.to_string(index=False)}\n", flush=True)
        client.set_terminated(parent_id, status)
        os.environ.pop(tracking.PARENT_RUN_ENV, None)
