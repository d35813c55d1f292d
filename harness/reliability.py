"""``harness experiment=metric_reliability``: the meta-evaluation over seeds, one MLflow parent run and a report.

MetaQuantus-style meta-evaluation (Hedström, Bommer, Wickstrøm, Samek, Lapuschkin & Höhne, TMLR 2023) of
every selected metric (``metric=[...]``) over the methods under ``meta.methods`` (config nodes, composed
from ``conf/method`` by the experiment's defaults list), repeated for every seed in ``meta.seeds``: a seed
is a model trained from it, its evaluation samples and its perturbation draws. Each seed is one
:func:`harness.meta.run` (an MLflow run tagged ``harness.kind=meta_evaluation`` with ``meta/summary.csv``)
nested under one parent run tagged ``harness.kind=metric_reliability``, which holds the report (``report/``).

Per metric and seed (from :func:`metrics.meta_evaluation.meta_evaluate`): noise resilience
NR = mean(IAC_NR, IEC_NR) (scores unchanged under minor perturbations), adversary reactivity
AR = mean(IAC_AR, IEC_AR) (scores worse under disruptive ones), MC = mean of the four (1 ideal) with its
95 % interval over the perturbation draws. Over the seeds: the mean of each with a 95 % Student-t
interval over the seeds (S values; none for one seed). Agreement (Kendall's tau-b, scipy.stats.kendalltau):

* inter-metric: between two metrics' rankings of the methods (each by its clean headline, in its own
  direction), per seed, averaged over the seeds (Tomsett, Harborne, Chakraborty, Gurram & Preece, AAAI
  2020, ask the same of saliency metrics: do they agree?);
* cross-seed: between two seeds' rankings of the methods by one metric (the mean clean score over the
  samples), averaged over the pairs of seeds, with the lowest pair: does the metric give the same verdict
  on another model trained alike? (tau is unchanged when both rankings flip, so no direction is needed);
* the seeds' orderings of the metrics by MC, the same way.

``meta.only_correct: false`` scores every sample with the metrics that would otherwise leave out the
misclassified ones (``spurious_background``): the disruptively perturbed model misclassifies nearly every
sample, and a sample undefined in any condition is left out of that metric's statistics, so with
``true`` such a metric gets no result. null leaves each metric as configured.

A tau is NaN where a ranking is constant (e.g. a metric giving every method the same score).
"""
from __future__ import annotations

import itertools
import math
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402
from scipy.stats import t as t_dist  # noqa: E402

from harness import meta, tracking  # noqa: E402
from harness.build import ConfigError, build  # noqa: E402
from harness.preflight.knobs import SEED_MAX  # noqa: E402
from methods import Explainer  # noqa: E402

KIND = "metric_reliability"
SPACES = ("model", "input")


def settings(cfg: DictConfig) -> tuple[dict[str, DictConfig], list[int], dict]:
    """``(method nodes, seeds, meta_evaluate arguments)`` from ``cfg.meta``; a one-line :class:`ConfigError` if wrong."""
    node = cfg.meta
    unknown = sorted(set(node) - {"methods", "seeds", "only_correct", *meta.META_KEYS})
    if unknown:
        raise ConfigError(f"unknown key 'meta.{unknown[0]}': meta has methods, seeds, only_correct, {', '.join(meta.META_KEYS)}")
    if node.get("only_correct") is not None and not isinstance(node.get("only_correct"), bool):
        raise ConfigError(f"meta.only_correct must be true, false or null; got {node.get('only_correct')!r}")
    methods = dict(node.get("methods") or {})
    if len(methods) < 2:
        raise ConfigError(f"meta.methods needs at least two methods (+/method@meta.methods.NAME=NAME adds one); got {list(methods) or 'none'}")
    seeds = list(node.seeds) if isinstance(node.get("seeds"), ListConfig) else []
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= SEED_MAX for s in seeds) or len(set(seeds)) < len(seeds):
        shown = OmegaConf.to_container(node.seeds) if isinstance(node.get("seeds"), ListConfig) else node.get("seeds")
        raise ConfigError(f"meta.seeds must be a list of distinct integers in [0, {SEED_MAX}]; got {shown!r}")
    args = {key: node[key] for key in meta.META_KEYS if node.get(key) is not None}
    if args.get("space", "model") not in SPACES:
        raise ConfigError(f"meta.space must be model or input; got {args['space']!r}")
    k = args.get("n_perturbations", 5)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"meta.n_perturbations must be an integer >= 1; got {k!r}")
    minor, disruptive = float(args.get("minor_std", 0.01)), float(args.get("disruptive_std", 2.0))
    if not 0 < minor < disruptive or not math.isfinite(disruptive):
        raise ConfigError(f"meta needs 0 < minor_std < disruptive_std (finite); got {minor} and {disruptive}")
    for name, method in methods.items():
        build(method, f"meta.methods.{name}", seed=int(seeds[0]), contract=Explainer)
    return methods, seeds, args


def seed_configs(cfg: DictConfig, methods: dict[str, DictConfig], seed: int) -> list[DictConfig]:
    """One config per method for one seed: ``cfg`` with that ``seed`` and ``method``, without ``meta``.

    ``meta.only_correct`` (true/false; null leaves the metrics as configured) is set on every selected
    metric that has an ``only_correct`` argument.
    """
    only_correct = cfg.meta.get("only_correct")
    out = []
    for node in methods.values():
        one = cfg.copy()
        with open_dict(one):
            one.pop("meta")
            one.seed = int(seed)
            one.method = node
            if only_correct is not None:
                for metric in one.metric.values():
                    if "only_correct" in metric:
                        metric.only_correct = bool(only_correct)
        out.append(one)
    return out


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % Student-t interval of finite ``values`` (NaN bounds with fewer than two)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    if len(v) < 2:
        return float(v.mean()), math.nan, math.nan
    half = float(t_dist.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b of two score vectors (NaN where either is constant or has a NaN)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(kendalltau(a, b).statistic)


def per_seed(summaries: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """One row per (seed, metric): the meta-evaluation's columns with NR and AR added."""
    rows = []
    for seed, frame in summaries.items():
        frame = frame.assign(seed=seed, noise_resilience=frame[["iac_nr", "iec_nr"]].mean(1),
                             adversary_reactivity=frame[["iac_ar", "iec_ar"]].mean(1))
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def cross_seed(headlines: dict[int, dict[str, np.ndarray]]) -> pd.DataFrame:
    """Per metric: mean, lowest pair and number of seed pairs of Kendall's tau between the seeds' method rankings."""
    seeds = list(headlines)
    metrics = list(headlines[seeds[0]]) if seeds else []
    rows = []
    for m in metrics:
        taus = [tau(headlines[a][m], headlines[b][m]) for a, b in itertools.combinations(seeds, 2)]
        finite = [t for t in taus if t == t]
        rows.append({"metric": m, "cross_seed_tau": float(np.mean(finite)) if finite else math.nan,
                     "cross_seed_tau_min": float(min(finite)) if finite else math.nan, "seed_pairs": len(finite)})
    return pd.DataFrame(rows, columns=["metric", "cross_seed_tau", "cross_seed_tau_min", "seed_pairs"])


def summarise(rows: pd.DataFrame, headlines: dict[int, dict[str, np.ndarray]]) -> pd.DataFrame:
    """One row per metric: NR, AR and MC over the seeds (mean, 95 % interval) and the cross-seed tau."""
    out = []
    for m, part in rows.groupby("metric", sort=False):
        row = {"metric": m, "seeds": len(part)}
        for key in ("noise_resilience", "adversary_reactivity", "mc"):
            row[key], row[f"{key}_ci_low"], row[f"{key}_ci_high"] = interval(part[key].to_numpy())
        out.append(row)
    return pd.DataFrame(out).merge(cross_seed(headlines), on="metric", how="left")


def metric_order_agreement(rows: pd.DataFrame) -> float:
    """Mean Kendall tau between the seeds' orderings of the metrics by MC, over the metrics with an MC on every seed
    (NaN with one seed, or fewer than two such metrics)."""
    table = rows.pivot(index="metric", columns="seed", values="mc").dropna()
    taus = [tau(table[a].to_numpy(), table[b].to_numpy()) for a, b in itertools.combinations(table.columns, 2)]
    finite = [t for t in taus if t == t]
    return float(np.mean(finite)) if finite else math.nan


def _num(value: float, digits: int = 3) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def markdown(summary: pd.DataFrame, rows: pd.DataFrame, inter: pd.DataFrame, order_tau: float, methods: list[str], args: dict) -> str:
    """The report (module docstring) as Markdown."""
    seeds = sorted(rows["seed"].unique().tolist())
    head = (f"# Metric reliability\n\nMethods: {', '.join(methods)}; seeds {seeds}; {args.get('n_perturbations', 5)} minor "
            f"(std {args.get('minor_std', 0.01)}) and disruptive (std {args.get('disruptive_std', 2.0)}) perturbations of the "
            f"{args.get('space', 'model')} per seed. NR: noise resilience, mean(IAC_NR, IEC_NR); AR: adversary reactivity, "
            "mean(IAC_AR, IEC_AR); MC: their mean (1 ideal); [95 % t-interval over the seeds]. Cross-seed τ: Kendall's τ between "
            "two seeds' rankings of the methods by the metric (mean over pairs; lowest pair).\n")
    lines = ["| metric | NR | AR | MC | cross-seed τ (lowest) |", "|---|---|---|---|---|"]
    for r in summary.sort_values("mc", ascending=False).itertuples():
        cell = lambda key: f"{_num(getattr(r, key))} [{_num(getattr(r, key + '_ci_low'))}, {_num(getattr(r, key + '_ci_high'))}]"  # noqa: E731
        lines.append(f"| {r.metric} | {cell('noise_resilience')} | {cell('adversary_reactivity')} | {cell('mc')} | "
                     f"{_num(r.cross_seed_tau, 2)} ({_num(r.cross_seed_tau_min, 2)}) |")
    seed_lines = ["| seed | metric | MC [95 % CI over the draws] | IAC_NR | IAC_AR | IEC_NR | IEC_AR | n |", "|---|---|---|---|---|---|---|---|"]
    for r in rows.itertuples():
        seed_lines.append(f"| {r.seed} | {r.metric} | {_num(r.mc)} [{_num(r.mc_ci_low)}, {_num(r.mc_ci_high)}] | {_num(r.iac_nr)} | "
                          f"{_num(r.iac_ar)} | {_num(r.iec_nr)} | {_num(r.iec_ar)} | {int(r.n)} |")
    inter_lines = ["| | " + " | ".join(inter.columns) + " |", "|---|" + "---|" * len(inter.columns)]
    inter_lines += [f"| {name} | " + " | ".join(_num(v, 2) for v in row) + " |" for name, row in inter.iterrows()]
    return "\n".join([head, "## Per metric, over the seeds", "", *lines, "",
                      f"Agreement of the seeds' orderings of the metrics by MC: τ = {_num(order_tau, 2)}.", "",
                      "![reliability](reliability.png)", "",
                      "## Inter-metric agreement (Kendall's τ between the metrics' method rankings, mean over the seeds)", "",
                      *inter_lines, "", "## Per seed", "", *seed_lines, ""])


def figure(summary: pd.DataFrame):
    """Noise resilience against adversary reactivity, one point per metric with its intervals (MetaQuantus' plane)."""
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    for r in summary.itertuples():
        xerr = None if r.noise_resilience_ci_low != r.noise_resilience_ci_low else [[r.noise_resilience - r.noise_resilience_ci_low],
                                                                                   [r.noise_resilience_ci_high - r.noise_resilience]]
        yerr = None if r.adversary_reactivity_ci_low != r.adversary_reactivity_ci_low else [[r.adversary_reactivity - r.adversary_reactivity_ci_low],
                                                                                           [r.adversary_reactivity_ci_high - r.adversary_reactivity]]
        ax.errorbar(r.noise_resilience, r.adversary_reactivity, xerr=xerr, yerr=yerr, fmt="o", capsize=2, label=r.metric)
    ax.set_xlim(0, 1.05)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("noise resilience (1: unchanged under minor noise)")
    ax.set_ylabel("adversary reactivity (1: worse under disruption)")
    ax.set_title("metric reliability (mean, 95 % CI over seeds)", fontsize=8)
    ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return fig


def write(folder: Path, summary: pd.DataFrame, rows: pd.DataFrame, inter: pd.DataFrame, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    summary.to_csv(folder / "reliability.csv", index=False)
    rows.to_csv(folder / "per_seed.csv", index=False)
    inter.reset_index(names="metric").to_csv(folder / "inter_metric_tau.csv", index=False)
    (folder / "report.md").write_text(text)
    fig = figure(summary)
    for suffix in ("png", "pdf"):
        fig.savefig(folder / f"reliability.{suffix}", dpi=150)
    plt.close(fig)


def experiment(cfg: DictConfig, out: Path | None = None) -> dict[str, float]:
    """Run the experiment (module docstring); print the report; returns each metric's MC over the seeds.

    ``out``: also write the report folder there. Every setting and method is checked before any work.
    """
    methods, seeds, args = settings(cfg)
    names = list(methods)
    uri = tracking.tracking_uri(cfg)
    tracking.check_tracking(uri)
    experiment_id = tracking.experiment_id(uri, cfg.tracking.experiment, tracking.artifact_root(cfg, uri))
    client = MlflowClient(uri)
    parent = client.create_run(experiment_id, run_name=cfg.tracking.run_name or f"metric-reliability-{len(seeds)}-seeds",
                               tags={"harness.kind": KIND, "harness.methods": ",".join(names), "harness.metrics": ",".join(cfg.metric),
                                     "harness.seeds": ",".join(map(str, seeds)), "harness.meta_space": str(args.get("space", "model"))})
    parent_id = parent.info.run_id
    try:
        client.log_text(parent_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        summaries, headlines, inters = {}, {}, []
        for seed in seeds:
            _, result = meta.run(names, [], args, cfgs=seed_configs(cfg, methods, seed), parent=parent_id)
            summaries[seed] = result.summary
            headlines[seed] = {m: np.nanmean(result.scores[m]["clean"][0], axis=-1) for m in result.scores}
            inters.append(result.agreement)
        rows = per_seed(summaries)
        summary = summarise(rows, headlines)
        inter = sum(inters) / len(inters)
        text = markdown(summary, rows, inter, metric_order_agreement(rows), names, args)
        values = {f"reliability/{r.metric}/{key}": float(getattr(r, key)) for r in summary.itertuples()
                  for key in ("mc", "mc_ci_low", "mc_ci_high", "noise_resilience", "adversary_reactivity", "cross_seed_tau")}
        tracking.log_batch(parent_id, {k: v for k, v in values.items() if v == v})
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(out) if out is not None else Path(tmp)
            write(folder, summary, rows, inter, text)
            client.log_artifacts(parent_id, str(folder), "report")
    except BaseException as error:
        client.set_terminated(parent_id, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    client.set_terminated(parent_id, "FINISHED")
    mlflow.set_tracking_uri(uri)
    print(text, flush=True)
    print(tracking.browse_hint(uri, experiment_id, parent_id), flush=True)
    return {f"{r.metric}/mc": float(r.mc) for r in summary.itertuples()}
