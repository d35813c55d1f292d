"""A fresh SQLite store created by several processes at once; a file that is not a database refused in one line."""
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from harness.build import ConfigError
from harness.tracking.store import check_tracking

WORKER = """
import sys
from mlflow.tracking import MlflowClient
from harness.tracking.store import experiment_id
uri = sys.argv[1]
experiment = experiment_id(uri, "concurrent", None)
client = MlflowClient(uri)
run = client.create_run(experiment)
client.set_terminated(run.info.run_id, "FINISHED")
"""


@pytest.mark.slow
def test_processes_starting_at_once_on_a_fresh_store_all_finish(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, uri], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [w.communicate(timeout=300)[1] for w in workers]
    assert [w.returncode for w in workers] == [0] * 3, errors
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
