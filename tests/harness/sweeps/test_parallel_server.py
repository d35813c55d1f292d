"""Parallel sweeps against a real MLflow tracking server (issue 6, "Verified, in tests").

One ``mlflow server`` per module, on a free port of 127.0.0.1, over a throw-away SQLite
store; stopped by its process id at the end. Each test uses its own experiment.
"""
import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from harness.tracking import server as tracking_server
from tests.conftest import TINY

pytestmark = pytest.mark.slow
SWEEP = ["seed=0,1,2", "metric=[deletion]", "metric.deletion.steps=0.1,0.25"]  # 6 jobs; steps pairs share attributions


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracking_server")
    running = tracking_server.start(root, host="127.0.0.1", wait_s=180)
    try:
        yield running
    finally:
        tracking_server.stop(running)
        assert running.process.poll() is not None


def _command(args, home, uri, experiment):
    return [sys.executable, "-m", "harness", "-m", *args, *TINY, f"tracking.uri={uri}", f"tracking.experiment={experiment}"]


def _env(home):
    env = dict(os.environ, HARNESS_HOME=str(home), PYTHONPATH=os.getcwd())
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _harness(args, home, uri, experiment, cwd):
    return subprocess.run(_command(args, home, uri, experiment), capture_output=True, text=True, env=_env(home), cwd=cwd, timeout=600)


def _runs(uri, experiment):
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("harness.sweep") == "true"]
    jobs = [r for r in runs if r.data.tags.get("harness.sweep") != "true"]
    return client, parents, jobs


def test_six_jobs_on_two_parallel_workers_give_six_finished_children_of_one_parent(server, tmp_path):
    start = time.perf_counter()
    done = _harness(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *SWEEP], tmp_path / "home", server.uri, "parallel", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sweep estimate: 6 jobs; 3 distinct models" in done.stdout
    client, parents, jobs = _runs(server.uri, "parallel")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(jobs) == 6
    assert all(r.info.status == "FINISHED" and r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in jobs)
    assert len({r.data.tags["harness.config_hash"] for r in jobs}) == 6
    assert all("deletion" in r.data.metrics for r in jobs)
    # Two jobs per seed ran side by side: the cache lock made one train / explain and the other reuse it.
    assert sorted(r.data.tags["harness.model_cache"] for r in jobs) == ["hit"] * 3 + ["trained"] * 3
    assert sorted(r.data.tags["harness.attribution_cache"] for r in jobs) == ["computed"] * 3 + ["hit"] * 3
    table = open(client.download_artifacts(parents[0].info.run_id, "sweep_table.csv")).read()
    assert table.count("this sweep") == 6
    print(f"6-job joblib sweep against the server: {time.perf_counter() - start:.1f} s")


def test_interrupted_sweep_rerun_computes_only_the_missing_jobs(server, tmp_path):
    home, experiment = tmp_path / "home", "resume"
    args = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *SWEEP]
    first = subprocess.Popen(_command(args, home, server.uri, experiment), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=_env(home), cwd=tmp_path, start_new_session=True)
    client = MlflowClient(server.uri)
    try:
        deadline = time.monotonic() + 400
        finished = []
        while time.monotonic() < deadline and first.poll() is None:
            found = client.get_experiment_by_name(experiment)
            if found is not None:
                runs = client.search_runs([found.experiment_id], "attributes.status = 'FINISHED'")
                finished = [r for r in runs if r.data.tags.get("harness.sweep") != "true"]
                if len(finished) >= 2:
                    break
            time.sleep(0.3)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the sweep's own process group: launcher and workers
        first.wait(timeout=30)
    _, _, jobs = _runs(server.uri, experiment)
    done_before = {r.data.tags["harness.config_hash"] for r in jobs if r.info.status == "FINISHED"}
    assert 2 <= len(done_before) < 6, "the sweep must be interrupted part-way for this test to mean anything"

    again = _harness(args, home, server.uri, experiment, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    skipped = [line for line in again.stdout.splitlines() if line.startswith("job ") and ": skipped" in line]
    assert len(skipped) == len(done_before)
    client, parents, jobs = _runs(server.uri, experiment)
    finished = [r for r in jobs if r.info.status == "FINISHED"]
    assert len(finished) == 6 and len({r.data.tags["harness.config_hash"] for r in finished}) == 6
    assert not [r for r in jobs + parents if r.info.status == "RUNNING"]  # killed runs were found stale
    new_parent = [p for p in parents if p.info.status == "FINISHED"]
    assert len(new_parent) == 1
    computed_now = [r for r in jobs if r.data.tags.get("mlflow.parentRunId") == new_parent[0].info.run_id]
    assert len(computed_now) == 6 - len(done_before)
    assert {r.data.tags["harness.config_hash"] for r in computed_now}.isdisjoint(done_before)
    table = open(client.download_artifacts(new_parent[0].info.run_id, "sweep_table.csv")).read().splitlines()
    assert len(table) == 1 + 6 and sum("reused" in row for row in table) == len(done_before)


def test_a_failing_job_is_failed_with_traceback_others_finish_exit_non_zero(server, tmp_path):
    # submitit_local: each job its own process, as on a cluster (the joblib launcher isolates failures alike).
    args = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "+method.fail=false,true", "~method",
            "+method._target_=tests.exploding.maybe_exploding", "metric=[deletion]"]
    done = _harness(args, tmp_path / "home", server.uri, "failing", tmp_path)
    assert done.returncode != 0
    client, parents, jobs = _runs(server.uri, "failing")
    assert sorted(r.info.status for r in jobs) == ["FAILED", "FINISHED"]
    assert parents[0].info.status == "FAILED"
    for run in jobs:
        if run.info.status == "FAILED":
            assert "deliberate failure inside the explainer" in open(client.download_artifacts(run.info.run_id, "error.txt")).read()
    assert done.stdout.count("FAILED: job 1 (") == 1 and "FAILED: job 0" not in done.stdout
    assert "sweep: 2/2 jobs done (1 failed)" in "".join(p.read_text() for p in (tmp_path / "home").glob("multirun/*/.submitit/*/*_log.out"))
