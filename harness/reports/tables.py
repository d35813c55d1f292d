"""Tables a person reads: one run's metric summary and a sweep's comparison.

Intervals are 95 % percentile bootstrap intervals of the headline aggregate (mean or
median over the samples where the score is defined), 1000 seeded resamples.
"""
from __future__ import annotations

import math

import pandas as pd
import torch

from metrics import MetricResult

N_BOOT = 1000


def bootstrap_interval(scores: torch.Tensor, headline: str, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    valid = scores[~torch.isnan(scores)].double().cpu()
    if valid.numel() < 2:
        return float("nan"), float("nan")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(valid.numel(), (N_BOOT, valid.numel()), generator=gen)
    samples = valid[idx]
    stats = samples.mean(1) if headline == "mean" else samples.median(1).values
    lo, hi = torch.quantile(stats, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)).tolist()
    return lo, hi


def summary(results: dict[str, MetricResult], seed: int = 0) -> pd.DataFrame:
    rows = []
    for name, result in results.items():
        lo, hi = bootstrap_interval(result.scores, result.headline, seed)
        rows.append({
            "metric": name,
            "value": result.aggregate(),
            "ci_low": lo,
            "ci_high": hi,
            "n": int((~torch.isnan(result.scores)).sum()),
            "aggregate": result.headline,
            "better": "higher" if result.higher_is_better else "lower",
        })
    return pd.DataFrame(rows)


def fmt(value: float, lo: float | None = None, hi: float | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    text = f"{value:.4f}"
    if lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi)):
        text += f" [{lo:.4f}, {hi:.4f}]"
    return text


def render_summary(frame: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "metric": frame["metric"],
        "value [95% CI]": [fmt(v, lo, hi) for v, lo, hi in zip(frame["value"], frame["ci_low"], frame["ci_high"])],
        "n": frame["n"],
        "aggregate": frame["aggregate"],
        "better": frame["better"],
    })
    return shown.to_string(index=False)


def sweep_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per child run (as returned by ``mlflow.search_runs``): the job, its status and, in numeric columns,
    each headline metric ``NAME`` with ``NAME_ci_low`` and ``NAME_ci_high``, and the test accuracy."""
    if runs.empty:
        return pd.DataFrame()
    metric_names: list[str] = []
    for names in runs.get("tags.harness.metrics", pd.Series(dtype=str)).dropna():
        metric_names += [m for m in names.split(",") if m and m not in metric_names]
    overrides = [str(o).split() for o in runs.get("tags.harness.overrides", pd.Series([""] * len(runs))).fillna("")]
    shared = set.intersection(*(set(o) for o in overrides)) if len(overrides) > 1 else set()
    table = pd.DataFrame({
        "job": runs.get("tags.harness.job", pd.Series([""] * len(runs))).fillna("").values,
        "overrides": [" ".join(t for t in o if t not in shared) for o in overrides],  # what differs between jobs
        "status": runs["status"].values,
    })
    for name in metric_names + ["test_accuracy"]:
        for column in (name, f"{name}_ci_low", f"{name}_ci_high"):
            if f"metrics.{column}" in runs:
                table[column] = pd.to_numeric(runs[f"metrics.{column}"], errors="coerce").values
    return table.sort_values("job", key=lambda s: pd.to_numeric(s, errors="coerce")).reset_index(drop=True)
