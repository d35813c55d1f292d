"""Where runs are tracked: the MLflow store, checked before any work, and its experiments.

Backend: by default MLflow's recommended embedded store, SQLite
(``sqlite:///<paths.root>/mlflow.db``, absolute) with artifacts under
``<paths.root>/mlartifacts``; ``tracking.uri`` or ``$MLFLOW_TRACKING_URI`` points at
a server (``http://host:5000``) or another backend instead. The URI is checked
before any computation (:func:`check_tracking`; an existing SQLite file must be a
database).

Creating a fresh SQLite store (MLflow creates its tables and runs its migrations on
first use) is not safe when several processes do it at once: one fails with
``duplicate column name`` or ``table ... already exists`` before its run exists.
:func:`ready_store` therefore creates it under an exclusive file lock
(``<db>.lock`` beside the database, :func:`harness.cache.store.file_lock`), once per
process; every path to the store (:func:`experiment_id`) goes through it.

What each run logs is :mod:`harness.tracking.run_log`.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from harness.build import ConfigError
from harness.cache.store import file_lock

PARENT_RUN_ENV = "HARNESS_PARENT_RUN_ID"   # not MLFLOW_RUN_ID: the first child would resume the parent (mlflow#15713)
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
SQLITE_HEADER = b"SQLite format 3\x00"
CREATION_TIMEOUT_S = 600.0
_ready: set[str] = set()


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, None for other backends (and in-memory SQLite)."""
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


def ready_store(uri: str) -> None:
    """Make sure the store at ``uri`` exists with MLflow's tables, creating it under a file lock (once per process)."""
    db = sqlite_file(uri)
    if db is None or uri in _ready:
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(db.with_name(db.name + ".lock"), CREATION_TIMEOUT_S, f"tracking store {uri}", "stop the process creating it"):
        MlflowClient(uri).search_experiments(max_results=1)  # creates and migrates the tables
    _ready.add(uri)


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
        check_sqlite_file(uri)
        return
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as error:
        raise ConfigError(f"tracking store {uri} cannot be used ({' '.join(str(error).split())[:200]}); "
                          "allowed: sqlite:///path, http(s)://server or another MLflow backend URI") from None


def check_sqlite_file(uri: str) -> None:
    """An existing SQLite store file must be a readable SQLite database (header and schema), checked without writing."""
    db = sqlite_file(uri)
    if db is None or not db.exists():
        return
    allowed = "point tracking.uri (or paths.root) at an MLflow SQLite database, or at a path that does not exist yet"
    if db.is_dir():
        raise ConfigError(f"tracking store {uri}: {db} is a folder, not a database file; {allowed}")
    try:
        with open(db, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as error:
        raise ConfigError(f"tracking store {uri}: cannot read {db} ({error.strerror}); {allowed}") from None
    if header and header != SQLITE_HEADER:
        raise ConfigError(f"tracking store {uri}: {db} is not an SQLite database; {allowed}")
    if header:
        try:
            with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as connection:
                connection.execute("select name from sqlite_master limit 1").fetchall()
        except sqlite3.Error as error:
            raise ConfigError(f"tracking store {uri}: {db} is not a usable SQLite database ({error}); {allowed}") from None


def experiment_id(uri: str, name: str, artifacts: str | None) -> str:
    ready_store(uri)
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


def browse_hint(uri: str, experiment: str, run_id: str) -> str:
    """One line saying how to open ``run_id`` in MLflow's UI, in its machine-learning view.

    MLflow 3.17 opens every experiment in its GenAI (traces) view unless the address
    carries ``workflowType=machine_learning``, whatever the experiment's tags say.
    """
    page = f"#/experiments/{experiment}/runs/{run_id}?workflowType=machine_learning"
    if uri.startswith(("http://", "https://")):
        return f"browse: {uri.rstrip('/')}/{page}"
    return f"browse: mlflow ui --backend-store-uri {uri}  then  http://127.0.0.1:5000/{page}"
