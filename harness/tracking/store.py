"""Where runs are tracked: the MLflow store, checked before any work, and its experiments.

Backend: by default MLflow's recommended embedded store, SQLite
(``sqlite:///<paths.root>/mlflow.db``, absolute) with artifacts under
``<paths.root>/mlartifacts``; ``tracking.uri`` or ``$MLFLOW_TRACKING_URI`` points at
a server (``http://host:5000``) or another backend instead. The URI is checked
before any computation (:func:`check_tracking`).

What each run logs is :mod:`harness.tracking.run_log`.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from harness.build import ConfigError

PARENT_RUN_ENV = "HARNESS_PARENT_RUN_ID"   # not MLFLOW_RUN_ID: the first child would resume the parent (mlflow#15713)
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def home(cfg: DictConfig) -> Path:
    return Path(str(cfg.paths.root)).expanduser().resolve()


def tracking_uri(cfg: DictConfig) -> str:
    uri = cfg.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return str(uri)
    return f"sqlite:///{home(cfg) / 'mlflow.db'}"


def artifact_root(cfg: DictConfig, uri: str) -> str | None:
    """Where a new experiment keeps artifacts: local for local stores, the server's choice otherwise."""
    if uri.startswith(("http://", "https://", "databricks")):
        return None
    return (home(cfg) / "mlartifacts").as_uri()


def check_tracking(uri: str) -> None:
    """Fail fast, in one line, when runs could not be logged to ``uri``."""
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as response:
                if response.status != 200:
                    raise ConfigError(f"tracking server {uri} answered /health with HTTP {response.status}; start it or set tracking.uri to a reachable server")
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ConfigError(f"tracking server {uri} is unreachable ({reason}); start it (python -m harness.tracking.server, "
                              "or mlflow server ...) or set tracking.uri / MLFLOW_TRACKING_URI to a reachable store") from None
        return
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///"):]).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"tracking store {uri}: cannot create {folder} ({error.strerror}); choose a writable tracking.uri or paths.root") from None
        if not os.access(folder, os.W_OK):
            raise ConfigError(f"tracking store {uri}: {folder} is not writable; choose a writable tracking.uri or paths.root")
        return
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as error:
        raise ConfigError(f"tracking store {uri} cannot be used ({' '.join(str(error).split())[:200]}); "
                          "allowed: sqlite:///path, http(s)://server or another MLflow backend URI") from None


def experiment_id(uri: str, name: str, artifacts: str | None) -> str:
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifacts)
    except Exception:  # created meanwhile by a parallel worker
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id
