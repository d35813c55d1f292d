"""The Hydra entry point: compose the config, run one benchmark job, print its table.

In a sweep (``-m``), a job whose config hash already has a FINISHED run is skipped
when ``sweep.resume`` is true (:mod:`harness.sweeps.resume`), and every job reports the
sweep's progress (:func:`harness.sweeps.record_job`). A config with a ``meta`` node
(``experiment=metric_reliability``) runs :func:`harness.reliability.experiment` instead.
"""
from __future__ import annotations

import os
from pathlib import Path

import hydra
import mlflow
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from harness import reports, tracking
from harness.cache import config_hash
from harness.runner import run
from harness.sweeps import finished_earlier, record_job


@hydra.main(version_base="1.3", config_path="pkg://conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, float]:
    if cfg.get("meta") is not None:  # experiment=metric_reliability: the meta-evaluation over seeds, not a benchmark run
        from harness.reliability import experiment

        return experiment(cfg)
    hc = HydraConfig.get()
    multirun = hc.mode.name == "MULTIRUN"
    job = str(hc.job.num) if multirun else ""
    overrides = " ".join(hc.overrides.task) or "defaults"
    sweep_dir = Path(hc.runtime.output_dir).parent
    if multirun and cfg.get("sweep", {}).get("resume", True):
        earlier = finished_earlier(cfg, os.environ.get(tracking.PARENT_RUN_ENV), job, " ".join(hc.overrides.task))
        if earlier is not None:
            message = f"job {job}: skipped ({overrides}): FINISHED run {earlier.info.run_id} has config hash {config_hash(cfg)}"
            print(f"\n{message}\n{record_job(sweep_dir, job, 'skipped')}", flush=True)
            metrics = earlier.data.metrics
            return {name: metrics[name] for name in earlier.data.tags.get("harness.metrics", "").split(",") if name in metrics}
    try:
        outcome = run(cfg, choices=dict(hc.runtime.choices), overrides=list(hc.overrides.task), job=job)
    except BaseException:
        if multirun:
            print(record_job(sweep_dir, job, "failed"), flush=True)
        raise
    label = f"job {job}: " if job else ""
    model = f"model test accuracy {outcome.model_summary.get('test_accuracy', float('nan')):.3f}"
    if "test_accuracy/bg_gap" in outcome.model_summary:  # behaviour beside the attribution metrics (Xiao et al.)
        model += f", worst group {outcome.model_summary['worst_group_accuracy']:.3f}, BG-gap {outcome.model_summary['test_accuracy/bg_gap']:.3f}"
    print(f"\n{label}{overrides} | {model} | MLflow run {outcome.run_id}")
    print(reports.render_summary(outcome.summary), flush=True)
    if not multirun:  # a sweep's parent prints its own report
        print(tracking.browse_hint(mlflow.get_tracking_uri(), mlflow.get_run(outcome.run_id).info.experiment_id, outcome.run_id), flush=True)
    if multirun:
        print(record_job(sweep_dir, job, "finished"), flush=True)
    return outcome.headline()
