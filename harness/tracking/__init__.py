"""Tracking: where runs go (an MLflow store, checked before any work), what each run logs, and a local server.

Public names:

* the store (:mod:`harness.tracking.store`): :func:`tracking_uri`, :func:`check_tracking`,
  :func:`experiment_id`, :func:`artifact_root`, :func:`browse_hint`, :data:`PARENT_RUN_ENV`;
* a run's records (:mod:`harness.tracking.run_log`): :func:`log_results`, :func:`flat_params`,
  :func:`log_batch`, :func:`log_curve`, :func:`choice_params`, :func:`log_text_frame`, :func:`scores_table`, :func:`curve_table`.

A run's manifest (config, git commit, versions, threads, hashes of the weights and data) is
:mod:`harness.tracking.manifest`. ``python -m harness.tracking.server`` (:mod:`harness.tracking.server`) serves the store to parallel workers.
"""
from harness.tracking.run_log import choice_params, curve_table, flat_params, log_batch, log_curve, log_results, log_text_frame, scores_table
from harness.tracking.store import PARENT_RUN_ENV, artifact_root, browse_hint, check_tracking, experiment_id, tracking_uri

__all__ = [
    "PARENT_RUN_ENV", "artifact_root", "browse_hint", "choice_params", "check_tracking", "curve_table", "experiment_id", "flat_params", "log_batch",
    "log_curve", "log_results", "log_text_frame", "scores_table", "tracking_uri",
]
