"""``python -m harness -m ...`` end to end: one parent MLflow run, one child per job, a table."""
import os
import subprocess
import sys

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import TINY


def _harness(args, home, cwd):
    env = dict(os.environ, HARNESS_HOME=str(home), PYTHONPATH=os.getcwd())
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


@pytest.mark.slow
def test_sweep_gives_parent_with_nested_children_and_prints_the_table(tmp_path):
    home = tmp_path / "home"
    # Run from an unrelated directory: configs travel with the package, paths are absolute.
    done = _harness(["-m", "method=saliency,integrated_gradients", *TINY], home, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Sweep " in done.stdout and "method=integrated_gradients" in done.stdout and "deletion" in done.stdout

    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    parents = [r for r in runs if r.data.tags.get("harness.sweep") == "true"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.data.tags["harness.method"] for r in children) == ["integrated_gradients", "saliency"]
    assert all(r.info.status == "FINISHED" and "deletion" in r.data.metrics for r in children)
    table = MlflowClient().download_artifacts(parents[0].info.run_id, "sweep_table.csv")
    assert "method=saliency" in open(table).read()
    report = [a.path for a in MlflowClient().list_artifacts(parents[0].info.run_id, "report")]  # the comparison report, on the parent
    assert {"report/leaderboard.md", "report/scores.csv", "report/report.md"} <= set(report), report
    assert "Report of sweep" in done.stdout and "| saliency |" in done.stdout
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_sweep_with_a_failing_job_marks_it_and_exits_non_zero(tmp_path):
    home = tmp_path / "home"
    done = _harness(["-m", "+method.fail=false,true", "~method", "+method._target_=tests.exploding.maybe_exploding", *TINY], home, tmp_path)
    assert done.returncode != 0
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    parent = [r for r in runs if r.data.tags.get("harness.sweep") == "true"][0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.status for r in children) == ["FAILED", "FINISHED"]
    assert parent.info.status == "FAILED"
