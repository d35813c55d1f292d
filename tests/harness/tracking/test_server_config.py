"""``tracking=server``: where it points, and that an unreachable server stops a sweep before any work."""
import pytest

from harness.build import ConfigError
from harness.preflight import check
from harness.tracking import tracking_uri
from harness.tracking.server import command, free_port


def test_server_option_points_at_the_local_server_or_the_environment(make_cfg, monkeypatch):
    monkeypatch.delenv("HARNESS_TRACKING_SERVER", raising=False)
    assert tracking_uri(make_cfg("tracking=server")) == "http://127.0.0.1:5000"
    monkeypatch.setenv("HARNESS_TRACKING_SERVER", "http://tracking-host:5001")
    assert tracking_uri(make_cfg("tracking=server")) == "http://tracking-host:5001"
    assert tracking_uri(make_cfg("tracking=server", "tracking.uri=http://other:1")) == "http://other:1"


def test_unreachable_server_stops_a_parallel_sweep_in_one_line(harness_home):
    port = free_port()  # nothing listens there
    with pytest.raises(ConfigError) as info:
        check(["-m", "hydra/launcher=joblib", "seed=0,1", f"tracking.uri=http://127.0.0.1:{port}"])
    assert str(info.value).startswith(f"tracking server http://127.0.0.1:{port} is unreachable")
    assert "python -m harness.tracking.server" in str(info.value) and "\n" not in str(info.value)


def test_server_command_serves_the_sqlite_store_and_proxies_artifacts(tmp_path):
    cmd = command(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlartifacts", "127.0.0.1", 5123)
    assert cmd[cmd.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert cmd[cmd.index("--artifacts-destination") + 1] == str(tmp_path / "mlartifacts")
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "5123"
