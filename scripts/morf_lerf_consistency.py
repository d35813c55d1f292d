"""MoRF-LeRF consistency per deletion substrate, per seed, from a ``deletion_insertion`` sweep's MLflow store.

    HARNESS_HOME=/tmp/di python -m harness experiment=deletion_insertion \\
        'hydra.sweeper.params={seed: "0,1,2", method: "saliency,gradcam,..."}'
    python scripts/morf_lerf_consistency.py /tmp/di
    python scripts/morf_lerf_consistency.py --direct --seeds 0,1,2 dataset.image_size=16   # no sweep: in one process

``--direct`` computes the same scores in one process, without a sweep and its MLflow runs (a sweep's
per-job overhead dominates at small sizes): for every seed, the experiment's model and data (the
``deletion_insertion`` config with the given overrides; trained through the harness's cache under
``$HARNESS_HOME``), the first ``eval.n_samples`` test images, every method of :data:`METHODS` and the
experiment's eight ``deletion_<substrate>_<order>`` metrics; it prints each seed's test accuracy.

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
import sys
from pathlib import Path

import pandas as pd
from scipy.stats import kendalltau, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout: the harness's packages

from harness.reliability import interval  # noqa: E402  (mean and 95 % Student-t interval over the seeds)

SUBSTRATES = ("mean", "blur", "noise", "road")
METHODS = ("saliency", "gradient_x_input", "integrated_gradients", "smoothgrad", "guided_backprop", "deconvnet", "gradcam",
           "gradcam_pp", "layercam", "lrp", "occlusion", "random", "sobel")   # deeplift refuses on max-pooling


def direct(seeds: list[int], overrides: list[str]) -> pd.DataFrame:
    """One row per (seed, method) with every deletion metric's mean score, computed in this process (module docstring)."""
    import torch

    from harness.build import build
    from harness.datasets import Dataset
    from harness.meta import configs, first_samples
    from harness.preflight.settings import resolve_device
    from harness.seeding import seed_everything
    from methods import Explainer
    from metrics import Metric

    rows = []
    for seed in seeds:
        cfgs = configs(list(METHODS), ["experiment=deletion_insertion", "~metric.insertion", f"seed={seed}", *overrides])
        cfg = cfgs[0]
        dataset = build(cfg.dataset, "dataset", seed=seed, contract=Dataset)
        metrics = {name: build(node, f"metric.{name}", seed=seed, contract=Metric) for name, node in cfg.metric.items()}
        device = resolve_device(str(cfg.device))
        seed_everything(seed)
        trained, x, context = first_samples(cfg, dataset, device)
        model = trained.model.eval()
        with torch.no_grad():
            targets = model(x).argmax(1)
        print(f"seed {seed}: test accuracy {trained.summary['test_accuracy']:.3f}", flush=True)
        for name, c in zip(METHODS, cfgs):
            explainer = build(c.method, "method", seed=seed, contract=Explainer)
            maps = explainer(model, x, targets).detach()
            row = {"seed": seed, "method": name}
            for metric_name, metric in metrics.items():
                row[metric_name] = float(metric(model, x, targets, maps, **(context | {"explainer": explainer})).scores.double().nanmean())
            rows.append(row)
    return pd.DataFrame(rows)


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
    parser.add_argument("home", nargs="?", type=Path, help="the harness home (HARNESS_HOME) the sweep logged to")
    parser.add_argument("--direct", action="store_true", help="compute the scores here instead of reading a sweep")
    parser.add_argument("--seeds", default="0,1,2", help="with --direct: comma-separated seeds (default 0,1,2)")
    parser.add_argument("overrides", nargs="*", help="with --direct: config overrides (e.g. dataset.image_size=16)")
    args = parser.parse_args(argv)
    if args.direct and args.home is not None and "=" in str(args.home):
        args.overrides.insert(0, str(args.home))
    frame = direct([int(v) for v in args.seeds.split(",")], args.overrides) if args.direct else scores(args.home)
    if frame.empty:
        print(f"error: no finished deletion runs in {args.home}", file=sys.stderr)
        return 2
    print(frame.round(3).to_string(index=False))
    table = consistency(frame)
    print(f"{frame['method'].nunique()} methods, seeds {sorted(int(s) for s in frame['seed'].unique())}\n")
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
