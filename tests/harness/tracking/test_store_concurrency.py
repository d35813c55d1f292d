"""A fresh SQLite store created by several processes at once; a file that is not a database refused in one line."""
import multiprocessing

import pytest
from mlflow.tracking import MlflowClient

from harness.build import ConfigError
from harness.tracking.store import check_tracking, experiment_id


def create_a_run(uri: str, start) -> None:
    """One process's first run on the store: experiment (creating the store), a run, FINISHED; all start at ``start``."""
    start.wait(timeout=60)
    experiment = experiment_id(uri, "concurrent", None)
    client = MlflowClient(uri)
    run = client.create_run(experiment)
    client.set_terminated(run.info.run_id, "FINISHED")


@pytest.mark.slow  # one store creation (MLflow's migrations): ~5-15 s on 2 shared cores
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="forks the test process")
def test_processes_starting_at_once_on_a_fresh_store_all_finish(tmp_path):
    # Forked (mlflow already imported, so no start-up cost) and released together by a barrier: 3 processes
    # reproduced the creation race without the lock (alembic "Online migration expected to match one row").
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    context = multiprocessing.get_context("fork")
    start = context.Barrier(3)
    workers = [context.Process(target=create_a_run, args=(uri, start)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * 3  # a failing worker prints its traceback to stderr
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("concurrent").experiment_id
    assert sorted(r.info.status for r in client.search_runs([experiment])) == ["FINISHED"] * 3


@pytest.mark.parametrize("content", [b"just some text\n", b"SQLite format 3\x00" + b"\xff" * 200])
def test_a_store_file_that_is_not_a_database_is_one_line(tmp_path, content):
    db = tmp_path / "mlflow.db"
    db.write_bytes(content)
    with pytest.raises(ConfigError, match="not (an|a usable) SQLite database") as error:
        check_tracking(f"sqlite:///{db}")
    assert "\n" not in str(error.value)
    assert db.read_bytes() == content
