"""Sweeps: one parent MLflow run per multirun, resuming finished jobs, the cost estimate and the progress line.

Public names:

* :class:`MlflowSweepCallback` (:mod:`harness.sweeps.callback`, named in ``conf/config.yaml``
  under ``hydra.callbacks``): the parent run, its children and the comparison table;
* resume (:mod:`harness.sweeps.resume`): :func:`finished_earlier`, :func:`close_stale_runs`;
* the cost estimate (:mod:`harness.sweeps.cost`): :func:`job_cost`, :func:`estimate`;
* the progress line (:mod:`harness.sweeps.progress`): :func:`record_job`.
"""
from harness.sweeps.callback import MlflowSweepCallback
from harness.sweeps.cost import estimate, job_cost
from harness.sweeps.progress import record_job
from harness.sweeps.resume import close_stale_runs, finished_earlier

__all__ = ["MlflowSweepCallback", "close_stale_runs", "estimate", "finished_earlier", "job_cost", "record_job"]
