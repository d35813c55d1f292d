"""Read a comparison back from the MLflow store alone: the runs, their per-sample scores, their curves.

A *source* is a sweep's parent run id (its children and the earlier runs a resumed sweep
reused, each with the overrides of the job it answered in this sweep), any other run id, an
MLflow experiment name, or a filter string
(``tags.harness.method = 'saliency'``, searched over every experiment). Nothing is
recomputed: the scores are each run's ``scores.csv`` artifact (one row per evaluated
sample, one column per metric, see :mod:`harness.tracking.run_log`). A run without it
(failed, or logged by something else) is named in :attr:`Collection.skipped` and left out.

The tidy frame (:func:`load`) has one row per (run, sample, metric): ``run``, ``method``,
``model``, ``dataset``, ``seed``, every swept key (a key of ``harness.overrides`` whose
value differs between runs), ``sample`` (the index in the run's evaluated samples, the
same images for runs with the same data settings), ``metric``, ``score``. The K runs of one
sharded evaluation (``eval.shards=K``, tag ``harness.shard_of``) are merged into one run (the
shard-0 run's id) holding every shard's samples, once all K have finished; until then they
are named in :attr:`Collection.skipped`. A method's
label includes its swept ``method.*`` keys (and ``experiment/*`` method variants), so two settings of one method are two rows
of the leaderboard. When several finished runs answer the same config (same
``harness.config_hash``, e.g. an experiment holding several sweeps), the newest counts.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from harness.sweeps.resume import reused_overrides, reused_runs
from harness.tracking import tracking_uri

MODEL_KEYS = {"test_accuracy": "test_accuracy", "worst_group_accuracy": "worst_group_accuracy", "bg_gap": "test_accuracy/bg_gap"}
NAMED = ("method", "model", "dataset", "seed")  # columns of their own, not swept keys
# Swept keys that set the method: its arguments, and an experiment's method variants (``+experiment/conservation=ig_50``,
# a config under conf/experiment/NAME/ that picks a method and its settings); they label methods, not blocks.
METHOD_KEYS = ("method.", "experiment/")


@dataclass
class Collection:
    """What a source holds: one row per used run (``runs``), the tidy scores, curves, and what was left out."""

    source: str
    kind: str                       # "sweep", "run", "experiment" or "filter"
    uri: str
    runs: pd.DataFrame              # one row per used run: run, method, model, dataset, seed, swept keys, model accuracies, ...
    scores: pd.DataFrame            # the tidy frame of :func:`load`
    swept: list[str]                # swept keys (columns of runs and scores)
    better: dict[str, str]          # metric -> "higher" / "lower"
    aggregate: dict[str, str]       # metric -> "mean" / "median"
    curves: pd.DataFrame            # run, method, metric, x, sample, value (curve metrics only)
    parent_id: str | None = None
    skipped: list[str] = field(default_factory=list)   # one line per run left out, naming it and why
    notes: list[str] = field(default_factory=list)     # one line per assumption the loader had to make


def default_uri() -> str:
    """The store ``python -m harness`` logs to by default: ``$MLFLOW_TRACKING_URI``, else ``$HARNESS_HOME/mlflow.db``."""
    cfg = OmegaConf.create({"tracking": {"uri": None}, "paths": {"root": os.environ.get("HARNESS_HOME", ".harness")}})
    return tracking_uri(cfg)


def reused_job_overrides(parent: Run) -> dict[str, str]:
    """``{run id: overrides}`` of the earlier runs a sweep reused: the overrides of the job each one answered in this sweep."""
    own = reused_overrides(parent)
    return {run_id: own[job] for job, run_id in reused_runs(parent).items() if job in own}


def find_runs(client: MlflowClient, source: str) -> tuple[str, list[Run], str | None, dict[str, str]]:
    """The kind of ``source``, its runs, the sweep parent (or None) and the overrides of the reused runs' jobs in that sweep
    (see the module docstring); a one-line ValueError when it names nothing."""
    if re.fullmatch(r"[0-9a-f]{32}", source):
        try:
            run = client.get_run(source)
        except Exception:
            run = None
        if run is not None:
            if run.data.tags.get("harness.sweep") != "true":
                return "run", [run], None, {}
            children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{source}'", max_results=50000)
            reused = [client.get_run(run_id) for run_id in sorted(set(reused_runs(run).values()))]
            return "sweep", list(children) + reused, source, reused_job_overrides(run)
    experiment = client.get_experiment_by_name(source)
    if experiment is not None:
        runs = client.search_runs([experiment.experiment_id], "", max_results=50000)
        return "experiment", [r for r in runs if r.data.tags.get("harness.sweep") != "true"], None, {}
    experiments = [e.experiment_id for e in client.search_experiments()]
    try:
        runs = client.search_runs(experiments, source, max_results=50000)
    except Exception as error:
        raise ValueError(f"report source {source!r} is no run id, no experiment name and no valid filter string "
                         f"({' '.join(str(error).split())[:160]}); allowed: a sweep's parent run id, an experiment name, "
                         "or an MLflow filter such as \"tags.harness.method = 'saliency'\"") from None
    return "filter", [r for r in runs if r.data.tags.get("harness.sweep") != "true"], None, {}


def _overrides(run: Run, text: str | None = None) -> dict[str, str]:
    out = {}
    for token in (run.data.tags.get("harness.overrides", "") if text is None else text).split():
        if "=" in token:
            key, value = token.lstrip("+~").split("=", 1)
            out[key] = value
    return out


def _canonical(text: str) -> str:
    """An override's value as the run's flattened config param spells it (``true`` -> ``True``, ``[0.1,0.5]`` -> ``[0.1, 0.5]``)."""
    try:
        return str(yaml.safe_load(text))
    except yaml.YAMLError:
        return text


def _newest_per_config(runs: list[Run]) -> tuple[list[Run], list[str]]:
    ordered = sorted(runs, key=lambda r: r.info.start_time or 0, reverse=True)
    kept, seen, dropped = [], set(), []
    for run in ordered:
        key = run.data.tags.get("harness.config_hash")
        if key and key in seen:
            dropped.append(run.info.run_id)
            continue
        if key:
            seen.add(key)
        kept.append(run)
    return kept, dropped


SHARD_TAG, SHARD_GROUP_TAG = "harness.shard", "harness.shard_of"  # set by harness.runner on the runs of a sharded evaluation


def merge_shards(runs: list[Run], tables: dict[str, pd.DataFrame], skipped: list[str]) -> tuple[list[Run], dict[str, list[str]]]:
    """Runs with each complete sharded evaluation as one (its shard-0 run, ``tables`` holding every shard's rows).

    Returns the runs and, per merged run, its shards' run ids in shard order; an incomplete group is
    left out with one line in ``skipped`` naming the missing shards.
    """
    groups: dict[str, dict[int, Run]] = {}
    kept = []
    for run in runs:
        group, shard = run.data.tags.get(SHARD_GROUP_TAG), run.data.tags.get(SHARD_TAG, "")
        if not group or "/" not in shard:
            kept.append(run)
            continue
        groups.setdefault(group, {})[int(shard.split("/")[0])] = run
    members: dict[str, list[str]] = {}
    for group, shards in groups.items():
        total = int(next(iter(shards.values())).data.tags[SHARD_TAG].split("/")[1])
        missing = sorted(set(range(total)) - set(shards))
        if missing:
            skipped.append(f"sharded evaluation {group} ({next(iter(shards.values())).data.tags.get('harness.method', '?')}): "
                           f"shard(s) {', '.join(map(str, missing))} of {total} not finished; re-run the sweep (resume runs only those)")
            continue
        ordered = [shards[i] for i in range(total)]
        head = ordered[0].info.run_id
        tables[head] = pd.concat([tables[r.info.run_id] for r in ordered], ignore_index=True).sort_values("index", kind="stable")
        members[head] = [r.info.run_id for r in ordered]
        kept.append(ordered[0])
    return kept, members


def collect(source: str, uri: str | None = None, curves: bool = True) -> Collection:
    """Every used run of ``source`` with its per-sample scores (and curves); see the module docstring."""
    uri = uri or default_uri()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per downloaded file otherwise
    client = MlflowClient(uri)
    kind, runs, parent, job_overrides = find_runs(client, source)
    skipped = [f"run {r.info.run_id} ({r.data.tags.get('harness.method', '?')}): status {r.info.status}, not FINISHED"
               for r in runs if r.info.status != "FINISHED"]
    runs, dropped = _newest_per_config([r for r in runs if r.info.status == "FINISHED"])
    notes = [f"{len(dropped)} older run(s) answering the same config as a newer one left out"] if dropped else []
    rows, long, curve_rows, tables = [], [], [], {}
    better: dict[str, str] = {}
    aggregate: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            try:
                path = client.download_artifacts(run.info.run_id, "scores.csv", tmp)
                tables[run.info.run_id] = pd.read_csv(path)
                Path(path).unlink(missing_ok=True)
            except Exception:
                skipped.append(f"run {run.info.run_id} ({run.data.tags.get('harness.method', '?')}): no per-sample scores (scores.csv)")
        runs = [r for r in runs if r.info.run_id in tables]
        runs, members = merge_shards(runs, tables, skipped)
        overrides = {r.info.run_id: _overrides(r, job_overrides.get(r.info.run_id)) for r in runs}  # a reused run: its job's, in this sweep
        keys = sorted({k for o in overrides.values() for k in o} - {"eval.shard"})
        # a key's value in a run: its override, else the run's own config value (a run that took it from a YAML has the
        # same value as one that overrode it with that value, so the two land in one block)
        value = {r.info.run_id: {k: _canonical(overrides[r.info.run_id][k]) if k in overrides[r.info.run_id] else r.data.params.get(k, "")
                                 for k in keys} for r in runs}
        swept = [k for k in keys if k not in NAMED and len({v[k] for v in value.values()}) > 1]
        for run in runs:
            run_id, tags, table = run.info.run_id, run.data.tags, tables[run.info.run_id]
            metrics = [m for m in tags.get("harness.metrics", "").split(",") if m]
            metrics = [m for m in metrics if m in table] or [c for c in table if c not in ("index", "label", "predicted", "target", "group") and "/" not in c]
            if not metrics:
                skipped.append(f"run {run_id} ({tags.get('harness.method', '?')}): scores.csv holds no metric column")
                continue
            method = tags.get("harness.method") or run.data.params.get("method", "?")
            method_keys = [f"{k}={overrides[run_id][k]}" for k in swept if k.startswith(METHOD_KEYS) and k in overrides[run_id]]
            row = {
                "run": run_id, "method": method + (f" ({', '.join(method_keys)})" if method_keys else ""),
                "model": tags.get("harness.model") or run.data.params.get("model", "?"),
                "dataset": tags.get("harness.dataset") or run.data.params.get("dataset", "?"),
                "seed": int(run.data.params["seed"]) if run.data.params.get("seed", "").lstrip("-").isdigit() else 0,
            }
            row |= {k: value[run_id][k] for k in swept}
            for name in metrics:
                direction = tags.get(f"harness.better.{name}")
                if direction in ("higher", "lower"):
                    better.setdefault(name, direction)
                aggregate.setdefault(name, tags.get(f"harness.aggregate.{name}", "mean"))
                part = pd.DataFrame({"sample": table["index"] if "index" in table else range(len(table)), "metric": name,
                                     "score": pd.to_numeric(table[name], errors="coerce")})
                long.append(part.assign(**row))
                offset = 0
                for member in members.get(run_id, [run_id]) if curves else []:  # a merged sharded run: every shard's curves
                    try:
                        curve_path = client.download_artifacts(member, f"curves/{name}.csv", tmp)
                    except Exception:
                        continue
                    frame = pd.read_csv(curve_path)
                    samples = [c for c in frame if c.startswith("sample_")]
                    values = frame[samples].rename(columns={c: f"sample_{offset + i}" for i, c in enumerate(samples)})
                    values = values.melt(var_name="sample", value_name="value")
                    values["x"] = list(frame["x"]) * len(samples)
                    offset += len(samples)
                    curve_rows.append(values.assign(run=run_id, method=row["method"], metric=name, seed=row["seed"],
                                                    model=row["model"], dataset=row["dataset"]))
            classes = run.data.params.get("dataset.n_classes")
            row |= {key: run.data.metrics.get(logged, float("nan")) for key, logged in MODEL_KEYS.items()}
            row["n_classes"] = int(classes) if classes and classes.isdigit() else int(table["label"].max()) + 1 if "label" in table else 0
            row["n_test"] = int(run.data.params["dataset.n_test"]) if run.data.params.get("dataset.n_test", "").isdigit() else None
            row["warnings"] = tags.get("harness.warnings", "")
            row["job"] = tags.get("harness.job", "")
            rows.append(row)
    unknown = sorted({m for part in long for m in part["metric"].unique()} - set(better))
    for name in unknown:
        better[name] = "higher"
        notes.append(f"metric {name}: no direction logged (tag harness.better.{name}); assumed higher is better")
    columns = ["run", "method", "model", "dataset", "seed", *swept, "sample", "metric", "score"]
    scores = pd.concat(long, ignore_index=True)[columns] if long else pd.DataFrame(columns=columns)
    curve_frame = pd.concat(curve_rows, ignore_index=True) if curve_rows else pd.DataFrame(
        columns=["run", "method", "metric", "seed", "model", "dataset", "sample", "x", "value"])
    return Collection(source, kind, uri, pd.DataFrame(rows), scores, swept, better, aggregate, curve_frame, parent, skipped, notes)


def load(source: str, uri: str | None = None) -> pd.DataFrame:
    """The tidy per-sample frame of ``source`` (one row per run, sample and metric; see the module docstring).

    Args:
        source (str): A sweep's parent run id, a run id, an MLflow experiment name or a filter string.
        uri (str or None, optional): The tracking store; None: ``$MLFLOW_TRACKING_URI``, else
            ``$HARNESS_HOME/mlflow.db`` (as ``python -m harness``). Default: None.
    """
    return collect(source, uri, curves=False).scores
