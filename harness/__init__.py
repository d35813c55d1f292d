"""The harness: it composes a model, a dataset, an attribution method and metrics from ``conf/``, runs them, and tracks them.

Packages, in the order data flows through a run:

* :mod:`harness.datasets`: the dataset contract and the datasets ``conf/dataset`` names;
* :mod:`harness.models`: the networks ``conf/model`` names and where their weights come from;
* :mod:`harness.training`: the training loop, accuracies, and a run's cached trained model;
* (the explainers are the top-level package ``methods``, the metrics ``metrics``;)
* :mod:`harness.cache`: the content-addressed store of splits, models and attributions, and every key;
* :mod:`harness.tracking`: the MLflow store, what each run logs, and a local tracking server;
* :mod:`harness.sweeps`: multirun parent runs, resume, the cost estimate and progress line;
* :mod:`harness.reports`: the tables and figures a person reads.

Around them: :mod:`harness.preflight` (every check before any work), :mod:`harness.runner`
(``prepare`` and ``execute`` one job), :mod:`harness.app` (the Hydra entry point) and
:mod:`harness.build` (the one instantiation wrapper). ``harness`` (or ``python -m harness``) runs it.

From Python (:mod:`harness.api`, imported on first use so that ``import harness`` stays cheap):

* :func:`evaluate`: explain and score in-memory tensors or a torch ``Dataset`` with methods and
  metrics by config name, by name with overrides, or as objects; one tidy row per (method, metric, sample);
* :func:`explain`: each method's attributions, computed once, seeded as the runner seeds them;
* :func:`run`: exactly what the command line runs, returning a :class:`RunResult` (summary frame, run id).
"""
from __future__ import annotations

from typing import Any

__all__ = ["RunResult", "evaluate", "explain", "run"]  # the subpackages list their own public names


def __getattr__(name: str) -> Any:
    if name in __all__:
        from harness import api

        return getattr(api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
