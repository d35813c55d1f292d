"""Resuming a sweep: skip jobs that already finished, never leave a dead run looking alive.

A job's identity is its config hash (tag ``harness.config_hash``, see
:func:`harness.cache.config_hash`: what determines the results, not where they are
stored). When ``sweep.resume`` is true, a sweep job whose hash already has a FINISHED
run in the experiment is skipped: nothing is computed and no run is created, so a
re-run sweep never duplicates a finished run. The job's number is linked to that run
on the new parent (tag ``harness.reused.<job>``), so the sweep table lists every job.
FAILED, KILLED and unfinished runs do not count: their jobs run again.

A process killed with SIGKILL (or a lost machine) leaves its run RUNNING. Every run
carries the tag ``harness.process`` (host, pid and the process's start time); when a
sweep starts, RUNNING runs of this experiment whose process on *this* host no longer
exists are set to KILLED. Runs from other hosts cannot be checked from here and stay
RUNNING, which also does not count as finished.
"""
from __future__ import annotations

import logging
import os
import socket

from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from harness import tracking
from harness.cache import config_hash

log = logging.getLogger(__name__)
PROCESS_TAG = "harness.process"
REUSED_TAG = "harness.reused."
REUSED_OVERRIDES_TAG = "harness.reused_overrides."  # the reused job's own overrides in this sweep (the earlier run has its own)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_token(pid: int | None = None) -> str:
    """``host:pid:start`` of a process (the current one by default): unique even when pids are reused."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def process_alive(token: str) -> bool | None:
    """Whether the process of ``token`` still runs; None if that cannot be told from here (another host)."""
    try:
        host, pid_text, start = token.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    if os.path.isdir("/proc"):
        return _start_time(pid) is not None and (start == "?" or _start_time(pid) == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def close_stale_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """Set RUNNING runs whose process on this host is gone to KILLED; their ids."""
    stale = []
    runs = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=5000)
    for run in runs:
        token = run.data.tags.get(PROCESS_TAG)
        if token and process_alive(token) is False:
            client.set_terminated(run.info.run_id, "KILLED")
            stale.append(run.info.run_id)
    if stale:
        log.warning("marked %d runs KILLED whose process is gone: %s", len(stale), ", ".join(stale))
    return stale


def finished_run(client: MlflowClient, experiment_id: str, config_hash: str) -> Run | None:
    """The most recent FINISHED run of ``config_hash`` in the experiment (sweep parents excluded)."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`harness.config_hash` = '{config_hash}' and attributes.status = 'FINISHED'",
        order_by=["attributes.end_time DESC"], max_results=1,
    )
    return runs[0] if runs else None


def link_to_parent(client: MlflowClient, parent_id: str | None, job: str, run_id: str, overrides: str = "") -> None:
    """Record on the sweep's parent that job ``job`` (with this sweep's ``overrides``) is answered by the earlier run ``run_id``."""
    if parent_id:
        client.set_tag(parent_id, f"{REUSED_TAG}{job or 'single'}", run_id)
        if overrides:
            client.set_tag(parent_id, f"{REUSED_OVERRIDES_TAG}{job or 'single'}", overrides[:5000])


def reused_runs(parent: Run) -> dict[str, str]:
    """``{job: run id}`` of the jobs a sweep answered with earlier runs."""
    return {k[len(REUSED_TAG):]: v for k, v in parent.data.tags.items() if k.startswith(REUSED_TAG)}


def reused_overrides(parent: Run) -> dict[str, str]:
    """``{job: overrides}``: the overrides of this sweep's jobs that earlier runs answered (where recorded)."""
    return {k[len(REUSED_OVERRIDES_TAG):]: v for k, v in parent.data.tags.items() if k.startswith(REUSED_OVERRIDES_TAG)}


def finished_earlier(cfg: DictConfig, parent_id: str | None = None, job: str = "", overrides: str = "") -> Run | None:
    """The FINISHED run that already has this config's hash (linked to the sweep's parent, with the job's ``overrides``), or None."""
    uri = tracking.tracking_uri(cfg)
    client = MlflowClient(uri)
    experiment = tracking.experiment_id(uri, cfg.tracking.experiment, tracking.artifact_root(cfg, uri))
    earlier = finished_run(client, experiment, config_hash(cfg))
    if earlier is not None:
        link_to_parent(client, parent_id, job, earlier.info.run_id, overrides)
    return earlier
