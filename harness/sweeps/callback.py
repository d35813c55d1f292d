"""Hydra callback that gives a multirun one parent MLflow run and prints the comparison.

``on_multirun_start`` runs in the launching process: it checks the tracking store,
creates the experiment once (parallel creation races, mlflow#979) and the parent
run, and exports the parent's id in ``HARNESS_PARENT_RUN_ID`` for the jobs, which
open their runs as its children. ``on_multirun_end`` prints and logs the table of
jobs and closes the parent. Hydra skips ``on_multirun_end`` when a job fails, so an
``atexit`` handler closes the parent as FAILED (with the table) in that case.

Before the jobs start it also marks runs left RUNNING by dead processes as KILLED
(:func:`harness.sweeps.resume.close_stale_runs`) and exports the job count and start time
for the sweep's progress line. The table lists every job: those computed now (the
parent's children) and those a resumed sweep skipped, shown with the earlier run
that answers them (column ``run``: ``reused <id>``; column ``overrides``: the job's own overrides in
this sweep, recorded on the parent when it was skipped), each headline in numeric columns
(``NAME``, ``NAME_ci_low``, ``NAME_ci_high``). Failed jobs are listed by name. Then the
comparison report of the sweep (:mod:`harness.report`) is logged to the parent under
``report/`` and its leaderboard printed; a report that cannot be made says why in one line
and does not fail the sweep.
"""
from __future__ import annotations

import atexit
import os
import time
from typing import Any

import mlflow
import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from harness import reports, tracking
from harness.sweeps import progress, resume


def _user_config(config: DictConfig) -> DictConfig:
    """The config without its ``hydra`` node (resolving that node can fail outside a job)."""
    data = OmegaConf.to_container(config, resolve=False)
    data.pop("hydra", None)
    return OmegaConf.create(data)


def count_jobs(task_overrides: list[str], sweeper_params: dict | None = None) -> int:
    """The number of jobs of Hydra's basic sweeper: the product of the swept values' counts, from the
    command line and from ``hydra.sweeper.params`` (an experiment file's) for keys the command line leaves."""
    given = {o.lstrip("+~").split("=", 1)[0] for o in task_overrides}
    extra = [f"{key}={value}" for key, value in (sweeper_params or {}).items() if key not in given]
    try:
        parsed = OverridesParser.create().parse_overrides(list(task_overrides) + extra)
    except Exception:
        return 0
    count = 1
    for override in parsed:
        if override.is_sweep_override():
            count *= len(list(override.sweep_string_iterator()))
    return count


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        self.uri: str | None = None
        self.parent_id: str | None = None
        self.experiment_id: str | None = None
        self._environment: dict[str, str | None] = {}  # the variables the sweep sets for its jobs, as they were before it

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        cfg = _user_config(config)
        self.uri = tracking.tracking_uri(cfg)
        tracking.check_tracking(self.uri)
        self.experiment_id = tracking.experiment_id(self.uri, cfg.tracking.experiment, tracking.artifact_root(cfg, self.uri))
        client = MlflowClient(self.uri)
        resume.close_stale_runs(client, self.experiment_id)
        task = list(config.hydra.overrides.task) if "hydra" in config else []
        overrides = " ".join(task)
        parent = client.create_run(self.experiment_id, run_name=f"sweep {overrides}"[:250],
                                   tags={"harness.sweep": "true", "harness.overrides": overrides,
                                         resume.PROCESS_TAG: resume.process_token()})
        params = config.hydra.sweeper.get("params") if "hydra" in config else None
        self._environment = {key: os.environ.get(key) for key in (progress.JOBS_ENV, progress.START_ENV, "MLFLOW_TRACKING_URI")}
        os.environ[progress.JOBS_ENV] = str(count_jobs(task, None if params is None else OmegaConf.to_container(params)))
        os.environ[progress.START_ENV] = str(time.time())
        self.parent_id = parent.info.run_id
        client.log_text(self.parent_id, OmegaConf.to_yaml(cfg), "sweep_config.yaml")
        os.environ[tracking.PARENT_RUN_ENV] = self.parent_id
        os.environ["MLFLOW_TRACKING_URI"] = self.uri  # workers (joblib, submitit) log to the same store
        atexit.register(self._close, "FAILED")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._close("FINISHED")

    def table(self, parent_id: str) -> pd.DataFrame:
        """One row per job: the parent's children, and the earlier runs that answer skipped jobs."""
        runs = mlflow.search_runs(
            experiment_ids=[self.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
            output_format="pandas",
        )
        parent = MlflowClient(self.uri).get_run(parent_id)
        reused, own = resume.reused_runs(parent), resume.reused_overrides(parent)
        origin = {str(job): "this sweep" for job in runs.get("tags.harness.job", [])}
        if reused:
            ids = ", ".join(f"'{run_id}'" for run_id in set(reused.values()))
            earlier = mlflow.search_runs(experiment_ids=[self.experiment_id], filter_string=f"attributes.run_id IN ({ids})",
                                         output_format="pandas").set_index("run_id")
            rows = []
            for job, run_id in reused.items():
                if run_id in earlier.index:
                    row = earlier.loc[run_id].copy()
                    row["tags.harness.job"] = job  # the job number in this sweep
                    if job in own:  # and its overrides in this sweep, not the earlier run's
                        row["tags.harness.overrides"] = own[job]
                    row["run_id"] = run_id
                    rows.append(row)
                    origin[job] = f"reused {run_id}"
            runs = pd.concat([runs, pd.DataFrame(rows)], ignore_index=True)
        table = reports.sweep_table(runs)
        if not table.empty:
            table["run"] = [origin.get(str(job), "") for job in table["job"]]
        return table

    def _report(self, parent_id: str) -> None:
        """The sweep's comparison report, logged to the parent run (``report/``); its leaderboard and warnings printed."""
        from harness.report import render
        from harness.report import report as make_report

        try:
            result = make_report(parent_id, uri=self.uri)
        except Exception as error:  # the report must not hide the sweep's own outcome
            print(f"report of sweep {parent_id} not written: {' '.join(str(error).split())[:300]}", flush=True)
            return
        lines = [f"Report of sweep {parent_id} (artifacts report/ of the parent run; {result.ci_kind}):", render.markdown_leaderboard(result)]
        lines += [f"warning: {line}" for line in result.warnings]
        if self.experiment_id is not None:
            lines.append(tracking.browse_hint(self.uri, self.experiment_id, parent_id))
        print("\n".join(lines) + "\n", flush=True)

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
            skipped = (table["run"] != "this sweep").sum()
            lines = [f"\nSweep {parent_id}: {len(table)} jobs, {failed} not finished, {skipped} skipped (finished before)",
                     table.to_string(index=False, float_format=lambda v: f"{v:.4f}")]
            for row in table[table["status"] != "FINISHED"].itertuples():
                lines.append(f"{row.status}: job {row.job} ({row.overrides}); its traceback is the run's error.txt")
            print("\n".join(lines) + "\n", flush=True)
        self._report(parent_id)
        client.set_terminated(parent_id, status)
        os.environ.pop(tracking.PARENT_RUN_ENV, None)
        for key, value in self._environment.items():  # as before the sweep: a later sweep in this process logs where it says
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
