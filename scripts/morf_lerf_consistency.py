"""MoRF-LeRF consistency per deletion substrate, per seed, from a ``deletion_insertion`` sweep's MLflow store.

    HARNESS_HOME=/tmp/di python -m harness experiment=deletion_insertion \\
        'hydra.sweeper.params={seed: "0,1,2", method: "saliency,gradcam,..."}'
    python scripts/morf_lerf_consistency.py /tmp/di

Rong, Leemann, Borisov, Kasneci & Kasneci (ICML 2022, ROAD) report that plain deletion ranks attribution
methods inconsistently between the two removal orders (most relevant first, MoRF, and least relevant first,
LeRF), and that ROAD's noisy linear imputation makes the two orders agree more. The statistic here: per
seed and substrate, the rank correlation between the methods' ranking by MoRF (lower area = better) and
by LeRF (the experiment's ``deletion_<substrate>_lerf`` is flipped: higher = better), both Kendall's
tau-b and Spearman's rho (``scipy.stats``); 1 = the orders rank the methods identically. Per substrate
it prints every seed's value and the mean with a 95 % Student-t interval over the seeds, and the paired
difference ROAD minus each plain substrate (per seed, then its mean and interval): "ROAD is more
consistent" holds where that interval lies above 0.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, spearmanr
from scipy.stats import t as t_dist

SUBSTRATES = ("mean", "blur", "noise", "road")


def scores(home: Path) -> pd.DataFrame:
    """One row per (seed, method): the mean deletion area of every ``deletion_<substrate>_<order>`` metric."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    rows = []
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], max_results=50000):
            tags, values = run.data.tags, run.data.metrics
            if run.info.status != "FINISHED" or "harness.method" not in tags or not any(k.startswith("deletion_") for k in values):
                continue
            seed = run.data.params.get("seed", tags.get("harness.seed"))
            rows.append({"seed": int(seed), "method": tags["harness.method"],
                         **{k: v for k, v in values.items() if k.startswith("deletion_") and k.count("_") == 2}})
    return pd.DataFrame(rows)


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % Student-t interval over the seeds (NaN interval for one seed)."""
    values = values[np.isfinite(values)]
    mean = float(values.mean()) if len(values) else math.nan
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = t_dist.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def consistency(frame: pd.DataFrame) -> pd.DataFrame:
    """Per seed and substrate: Kendall tau and Spearman rho between the MoRF and LeRF rankings of the methods."""
    rows = []
    for seed, group in frame.groupby("seed"):
        for substrate in SUBSTRATES:
            morf, lerf = f"deletion_{substrate}_morf", f"deletion_{substrate}_lerf"
            if morf not in group or lerf not in group:
                continue
            both = group[[morf, lerf]].dropna()
            rows.append({"seed": seed, "substrate": substrate, "methods": len(both),
                         "kendall": float(kendalltau(-both[morf], both[lerf]).statistic),
                         "spearman": float(spearmanr(-both[morf], both[lerf]).statistic)})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("home", type=Path, help="the harness home (HARNESS_HOME) the sweep logged to")
    args = parser.parse_args(argv)
    frame = scores(args.home)
    if frame.empty:
        print(f"error: no finished deletion runs in {args.home}", file=sys.stderr)
        return 2
    table = consistency(frame)
    print(f"{frame['method'].nunique()} methods, seeds {sorted(frame['seed'].unique())}\n")
    print("| substrate | statistic | per seed | mean [95 % t-interval over seeds] |\n|---|---|---|---|")
    for substrate, group in table.groupby("substrate", sort=False):
        for stat in ("kendall", "spearman"):
            mean, low, high = interval(group[stat].to_numpy())
            print(f"| {substrate} | {stat} | {' / '.join(f'{v:.2f}' for v in group[stat])} | {mean:.2f} [{low:.2f}, {high:.2f}] |")
    print("\n| ROAD minus | statistic | per seed | mean [95 % t-interval] |\n|---|---|---|---|")
    wide = {stat: table.pivot(index="seed", columns="substrate", values=stat) for stat in ("kendall", "spearman")}
    for plain in ("mean", "blur", "noise"):
        for stat, pivot in wide.items():
            if "road" not in pivot or plain not in pivot:
                continue
            diff = (pivot["road"] - pivot[plain]).to_numpy()
            mean, low, high = interval(diff)
            print(f"| {plain} | {stat} | {' / '.join(f'{v:+.2f}' for v in diff)} | {mean:+.2f} [{low:+.2f}, {high:+.2f}] |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
