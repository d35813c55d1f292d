"""Sharding on Hydra's launchers (issue 17): a sweep over ``eval.shard=0,1,2`` as parallel jobs, merged by the report,
gives the per-sample scores of the unsharded run; on joblib (worker processes), submitit's local executor (one
process per job, as on Slurm) and, where ``ray`` and ``hydra-ray-launcher`` are installed, Ray.

The method is the ``random`` control, whose maps are drawn per sample (seed, test-split index), so the shards'
maps are the whole run's too. All runs log to one throw-away MLflow server (parallel workers must not share the
SQLite file) and share one harness home: the first sweep trains and caches the model, the unsharded run (in this
process, once) and the other sweeps reuse it.
"""
import importlib.util
import os
import subprocess
import sys

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from harness.report.load import collect
from harness.runner import run
from harness.tracking import server as tracking_server
from tests.conftest import TINY

pytestmark = pytest.mark.slow
SETTINGS = ["method=random", "metric=[deletion]", "eval.batch_size=2"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = tracking_server.start(tmp_path_factory.mktemp("shard_server"), host="127.0.0.1", wait_s=180)
    try:
        yield running
    finally:
        tracking_server.stop(running)


def _harness(args, home, uri, experiment, cwd):
    env = dict(os.environ, HARNESS_HOME=str(home), PYTHONPATH=os.getcwd())
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "harness", *args, *TINY, *SETTINGS, f"tracking.uri={uri}", f"tracking.experiment={experiment}"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


LAUNCHERS = {  # the launcher's overrides: two jobs at a time
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra/launcher=submitit_local"],
    "ray": ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2"],
}
OPTIONAL = {"ray": ("ray", "hydra_plugins.hydra_ray_launcher")}  # not in the sweeps extra: skipped without them


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("shard_home")


@pytest.fixture(scope="module")
def unsharded():
    """The whole run's per-sample scores, made once (in this process, after the first sweep cached the model)."""
    return {}


def _missing(modules) -> str | None:
    for module in modules:
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except ModuleNotFoundError:
            return module
    return None


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_a_sweep_over_three_shards_merges_into_the_unsharded_run(launcher, server, home, unsharded, tmp_path, make_cfg):
    missing = _missing(OPTIONAL.get(launcher, ()))
    if missing:
        pytest.skip(f"the {launcher} launcher needs {missing}")
    experiment = f"sharded-{launcher}"
    _harness(["-m", *LAUNCHERS[launcher], "eval.shards=3", "eval.shard=0,1,2"], home, server.uri, experiment, tmp_path)
    if not unsharded:
        before = mlflow.get_tracking_uri()
        try:
            outcome = run(make_cfg(*SETTINGS, f"paths.root={home}", f"tracking.uri={server.uri}", "tracking.experiment=whole"))
        finally:  # mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI: leave the other tests their own store
            mlflow.set_tracking_uri(before)
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        assert MlflowClient(server.uri).get_run(outcome.run_id).data.tags["harness.model_cache"] == "hit"  # the model the sweep cached
        unsharded["scores"] = collect("whole", uri=server.uri).scores
    whole, merged = unsharded["scores"], collect(experiment, uri=server.uri)
    assert len(merged.runs) == 1 and not merged.skipped  # three shard runs reported as one
    assert merged.scores["sample"].tolist() == whole["sample"].tolist() and len(whole) == 8
    assert merged.scores["score"].to_numpy() == pytest.approx(whole["score"].to_numpy(), abs=1e-6)
