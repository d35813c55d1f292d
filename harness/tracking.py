"""MLflow tracking: where runs go, and what each run logs.

Backend: by default MLflow's recommended embedded store, SQLite
(``sqlite:///<paths.root>/mlflow.db``, absolute) with artifacts under
``<paths.root>/mlartifacts``; ``tracking.uri`` or ``$MLFLOW_TRACKING_URI`` points at
a server (``http://host:5000``) or another backend instead. The URI is checked
before any computation (:func:`check_tracking`).

Each run logs: the composed config flattened as params and whole as ``config.yaml``;
each metric's headline under the metric's config name (``deletion``) with its 95 %
bootstrap interval (``deletion_ci_low``/``_high``) and sample count; per-sample
scores (``scores.csv``); curves (``curves/NAME.csv``, a plot, and the mean curve as
the metric history ``NAME_curve``); a heat-map figure; model accuracies and timings.
"""
from __future__ import annotations

import io
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from harness.build import ConfigError
from metrics.result import MetricResult

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
            raise ConfigError(f"tracking server {uri} is unreachable ({reason}); start it (python -m harness.server, or mlflow server ...) or set tracking.uri / MLFLOW_TRACKING_URI to a reachable store") from None
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
        raise ConfigError(f"tracking store {uri} cannot be used ({' '.join(str(error).split())[:200]}); allowed: sqlite:///path, http(s)://server or another MLflow backend URI") from None


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


def flat_params(cfg: DictConfig) -> dict[str, str]:
    data = OmegaConf.to_container(cfg, resolve=True)
    out: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            out[prefix] = str(node)[:6000]

    walk("", data)
    return out


def _send(run_id: str, points: list[tuple[str, float, int]]) -> None:
    """(key, value, step) points in batches of 1000 (point-by-point logging is 50x slower)."""
    now = int(time.time() * 1000)
    metrics = [Metric(key, float(value), now, step) for key, value, step in points]
    client = MlflowClient()
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i:i + 1000])


def log_batch(run_id: str, values: dict[str, float]) -> None:
    _send(run_id, [(key, value, 0) for key, value in values.items()])


def log_curve(run_id: str, name: str, curve: torch.Tensor) -> None:
    """The curve as the history of metric ``NAME_curve``, one step per point."""
    _send(run_id, [(f"{name}_curve", value, k) for k, value in enumerate(curve.tolist())])


def scores_table(results: dict[str, MetricResult], frame: pd.DataFrame) -> pd.DataFrame:
    for name, result in results.items():
        frame[name] = result.scores.cpu().numpy()
        for extra, values in result.extras.items():
            if values.dim() == 1 and values.numel() == len(frame):
                frame[f"{name}/{extra}"] = values.detach().cpu().numpy()
    return frame


def curve_table(result: MetricResult) -> pd.DataFrame:
    curves = result.curves.cpu().numpy()
    frame = pd.DataFrame(curves.T, columns=[f"sample_{i}" for i in range(curves.shape[0])])
    frame.insert(0, "mean", curves.mean(0))
    frame.insert(0, "x", result.curve_x.cpu().numpy())
    return frame


def log_text_frame(frame: pd.DataFrame, path: str) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    mlflow.log_text(buffer.getvalue(), path)
