"""The comparison itself, as numeric frames: leaderboard, significance, agreement, the models' header, warnings.

From a :class:`harness.report.load.Collection`, :func:`analyse` builds a :class:`Report`:

* ``summary``: one row per (method, metric): ``value`` (the headline over every unit),
  ``ci_low``/``ci_high`` (paired, seeded bootstrap; two-level when seeds, models or datasets
  vary, see :mod:`harness.report.stats`), ``n`` (defined scores), ``rank`` (1 = best, in
  the metric's logged direction; ties share the mean rank), ``rank_min``/``rank_max`` over
  the blocks, ``p_vs_random`` (Holm, one-sided) and ``beats_random``, ``near_best`` (not
  significantly different from the best method, Holm), ``control``;
* ``wide``: one row per method, for each metric ``NAME``, ``NAME_ci_low``, ``NAME_ci_high``,
  ``NAME_n``, ``NAME_rank``, ``NAME_beats_random``, then ``mean_rank`` (over metrics) and
  its spread over blocks; sorted by mean rank;
* ``pairs``: the Wilcoxon/Holm table of every ordered pair per metric (stratified by block when
  seeds, models or datasets vary, :func:`harness.report.stats.stratified_test`);
* ``friedman``: per metric, Friedman's chi-square, p, units and methods; ``summary["group"]``
  is the compact letter display (methods sharing a letter are not significantly different);
* ``agreement``: Kendall's tau between the rankings of each pair of metrics, and of each
  metric across blocks, with a one-line verdict each;
* ``header``: per model and dataset, test accuracy, worst-group accuracy and the BG-gap on
  the whole test split (mean over seeds), beside chance; a metric that gives every method
  the same scores (``background_gap`` does not look at attributions) is a property of the
  model, shown here as ``NAME (eval)`` (on the evaluated samples) and not ranked;
* ``warnings``: one line each (model near chance, a metric no method beats ``random`` on,
  the runs' ``harness.warnings`` tags, skipped runs, assumed directions).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.report import stats
from harness.report.load import METHOD_KEYS, Collection

CONTROLS = ("random", "sobel", "constant")  # maps that do not look at the model: a real method must beat them
REFERENCE = "random"
PLURAL = {"seed": "seeds", "model": "models", "dataset": "datasets"}
NEAR_CHANCE = 0.05   # accuracy within 5 points of chance is reported as "near chance"


def is_control(method: str) -> bool:
    return method.split(" (")[0] in CONTROLS


@dataclass
class Report:
    collection: Collection
    summary: pd.DataFrame
    wide: pd.DataFrame
    pairs: pd.DataFrame
    agreement: pd.DataFrame
    header: pd.DataFrame
    blocks: pd.DataFrame           # per (block, method, metric): value and rank
    varies: list[str]              # which of seed, model, dataset and swept keys vary between blocks
    ci_kind: str                   # one sentence: how the intervals were computed
    metrics: list[str]
    methods: list[str]
    alpha: float
    model_level: list[str]         # metrics that give every method the same scores (e.g. background_gap): shown in the header
    warnings: list[str] = field(default_factory=list)
    friedman: pd.DataFrame = field(default_factory=pd.DataFrame)   # per metric: chi2, p, units, methods, significant


def block_columns(collection: Collection) -> list[str]:
    return ["model", "dataset", "seed", *[k for k in collection.swept if not k.startswith(METHOD_KEYS)]]


def unit_matrix(scores: pd.DataFrame, metric: str, columns: list[str], methods: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(units x methods) scores of one metric, and each unit's block number."""
    part = scores[scores["metric"] == metric]
    table = part.groupby([*columns, "sample", "method"])["score"].mean().unstack("method").reindex(columns=methods)
    blocks = table.index.droplevel("sample") if len(columns) else pd.Index([0] * len(table))
    return table.to_numpy(dtype=float), pd.factorize(blocks)[0]


def ranks(values: pd.Series, higher: bool) -> pd.Series:
    return (-values if higher else values).rank(method="average", na_option="keep")


def analyse(collection: Collection, seed: int = 0, n_resamples: int = 2000, alpha: float = 0.05) -> Report:
    """The report's numbers (see the module docstring)."""
    scores = collection.scores
    if scores.empty:
        raise ValueError(f"report {collection.source!r}: no run with per-sample scores"
                         + (f" ({'; '.join(collection.skipped[:3])})" if collection.skipped else ""))
    methods = sorted(scores["method"].unique(), key=lambda m: (is_control(m), m))
    columns = block_columns(collection)
    varies = [c for c in columns if scores[c].nunique() > 1]
    columns_varying = varies
    metrics, model_level = [], []
    for metric in dict.fromkeys(scores["metric"]):
        matrix, _ = unit_matrix(scores, metric, columns_varying, methods)
        same = len(methods) > 1 and all(np.array_equal(matrix[:, 0], matrix[:, j], equal_nan=True) for j in range(1, len(methods)))
        (model_level if same else metrics).append(metric)
    if not metrics:
        raise ValueError(f"report {collection.source!r}: every metric ({', '.join(model_level)}) gives every method the same "
                         "scores; nothing to rank")
    rows, pair_frames, block_rows, friedman_rows = [], [], [], []
    for metric in metrics:
        higher = collection.better[metric] == "higher"
        sign = 1.0 if higher else -1.0
        matrix, blocks = unit_matrix(scores, metric, columns_varying, methods)
        aggregate = collection.aggregate.get(metric, "mean")
        with np.errstate(all="ignore"):
            values = stats.statistic(aggregate)(matrix, axis=0)
        low, high = stats.intervals(matrix, blocks, aggregate, seed, n_resamples)
        pairs = stats.pairwise(matrix, methods, sign, alpha, blocks).assign(metric=metric)
        pair_frames.append(pairs)
        vs_random = stats.versus(matrix, methods, REFERENCE, sign, blocks)
        frame = pd.DataFrame({"method": methods, "metric": metric, "value": values, "ci_low": low, "ci_high": high,
                              "n": (~np.isnan(matrix)).sum(0), "better": collection.better[metric], "aggregate": aggregate})
        frame["rank"] = ranks(frame["value"], higher).to_numpy()
        best = frame.loc[frame["rank"].idxmin(), "method"] if frame["value"].notna().any() else None
        distinct = pairs[(pairs["a"] == best) & pairs["significant"]]["b"] if best else pd.Series(dtype=str)
        frame["near_best"] = [m == best or m not in set(distinct) for m in methods]
        frame["p_vs_random"] = vs_random.to_numpy()
        frame["beats_random"] = np.where(np.isnan(frame["p_vs_random"]), np.nan, frame["p_vs_random"] < alpha)
        chi2, p_friedman, n_units = stats.friedman(matrix)
        friedman_rows.append({"metric": metric, "chi2": chi2, "p": p_friedman, "units": n_units, "methods": len(methods),
                              "significant": bool(p_friedman < alpha)})
        order = list(frame.sort_values(["rank", "method"])["method"])
        significant = {frozenset((r.a, r.b)) for r in pairs.itertuples() if r.significant}
        different = set() if p_friedman >= alpha else significant  # Friedman NaN (< 3 methods): the pairs alone
        frame["group"] = frame["method"].map(stats.letters(order, different))
        for b in np.unique(blocks):
            with np.errstate(all="ignore"):
                block_values = pd.Series(stats.statistic(aggregate)(matrix[blocks == b], axis=0), index=methods)
            block_rows.append(pd.DataFrame({"block": b, "method": methods, "metric": metric, "value": block_values.to_numpy(),
                                            "rank": ranks(block_values, higher).to_numpy()}))
        rows.append(frame)
    summary = pd.concat(rows, ignore_index=True)
    per_block = pd.concat(block_rows, ignore_index=True)
    labels = _block_labels(scores, columns_varying)
    per_block["block_label"] = per_block["block"].map(dict(enumerate(labels)))
    spread = per_block.groupby(["method", "metric"])["rank"].agg(rank_min="min", rank_max="max").reset_index()
    summary = summary.merge(spread, on=["method", "metric"], how="left")
    summary["control"] = summary["method"].map(is_control)
    wide = widen(summary, per_block, methods, metrics)
    pairs = pd.concat(pair_frames, ignore_index=True)
    agreement = agree(summary, per_block, metrics, varies)
    header = model_header(collection, model_level)
    n_blocks = per_block["block"].nunique()
    if n_blocks > 1:
        ci_kind = (f"95 % two-level bootstrap intervals ({n_resamples} resamples, seed {seed}): the {n_blocks} blocks "
                   f"({', '.join(varies)}) resampled, then samples within each; cells aggregate over {', '.join(varies)}")
    else:
        ci_kind = f"95 % BCa bootstrap intervals over samples (scipy.stats.bootstrap, {n_resamples} resamples, seed {seed}), paired across methods"
    report = Report(collection, summary, wide, pairs, agreement, header, per_block, varies, ci_kind, metrics, methods, alpha, model_level,
                    friedman=pd.DataFrame(friedman_rows, columns=["metric", "chi2", "p", "units", "methods", "significant"]))
    report.warnings = warn(report)
    return report


def _block_labels(scores: pd.DataFrame, columns: list[str]) -> list[str]:
    if not columns:
        return ["all"]
    keys = scores[columns].drop_duplicates().sort_values(columns)
    return [", ".join(f"{c}={v}" for c, v in zip(columns, row)) for row in keys.itertuples(index=False)]


def widen(summary: pd.DataFrame, per_block: pd.DataFrame, methods: list[str], metrics: list[str]) -> pd.DataFrame:
    wide = pd.DataFrame({"method": methods})
    for metric in metrics:
        part = summary[summary["metric"] == metric].set_index("method").reindex(methods)
        wide[metric] = part["value"].to_numpy()
        for column in ("ci_low", "ci_high", "n", "rank", "beats_random"):
            wide[f"{metric}_{column}"] = part[column].to_numpy()
    wide["mean_rank"] = summary.groupby("method")["rank"].mean().reindex(methods).to_numpy()
    by_block = per_block.groupby(["block", "method"])["rank"].mean().unstack("block").reindex(methods)
    wide["mean_rank_min"], wide["mean_rank_max"] = by_block.min(1).to_numpy(), by_block.max(1).to_numpy()
    wide["control"] = wide["method"].map(is_control)
    return wide.sort_values(["mean_rank", "method"]).reset_index(drop=True)


def agree(summary: pd.DataFrame, per_block: pd.DataFrame, metrics: list[str], varies: list[str]) -> pd.DataFrame:
    """Kendall's tau between the metrics' rankings (pairs of metrics), and of each metric between blocks."""
    rows = []
    signed = {m: summary[summary["metric"] == m].set_index("method")["value"] * (1 if summary[summary["metric"] == m]["better"].iloc[0] == "higher" else -1)
              for m in metrics}
    for i, a in enumerate(metrics):
        for b in metrics[i + 1:]:
            joined = pd.concat([signed[a], signed[b]], axis=1).dropna()
            value = stats.tau(joined.iloc[:, 0], joined.iloc[:, 1])
            rows.append({"kind": "metrics", "a": a, "b": b, "tau": value, "verdict": stats.verdict(value, f"{a} and {b}")})
    if varies:
        over = " and ".join(PLURAL.get(v, v) for v in varies)
        for metric in metrics:
            table = per_block[per_block["metric"] == metric].pivot_table(index="method", columns="block", values="value")
            sign = 1 if summary[summary["metric"] == metric]["better"].iloc[0] == "higher" else -1
            taus = [stats.tau(sign * table[x], sign * table[y]) for i, x in enumerate(table) for y in list(table)[i + 1:]]
            value = float(np.nanmean(taus)) if taus and not np.all(np.isnan(taus)) else float("nan")
            line = stats.verdict(value, f"{metric}: the rankings across {over}")
            if value == value and value < 0.6:
                line = f"{metric}: rankings are unstable across {over} (mean τ = {value:.2f} between blocks)"
            rows.append({"kind": f"across {over}", "a": metric, "b": metric, "tau": value, "verdict": line})
    return pd.DataFrame(rows, columns=["kind", "a", "b", "tau", "verdict"])


def model_header(collection: Collection, model_level: list[str]) -> pd.DataFrame:
    """Per model and dataset: accuracy, worst-group accuracy, BG-gap on the whole test split (means over seeds, with
    ``_min``/``_max`` over them), chance,
    and each method-independent metric (``background_gap``: the same BG-gap on the evaluated samples) as ``NAME (eval)``."""
    runs = collection.runs
    if runs.empty:
        return pd.DataFrame()
    runs = with_data_keys(runs, collection)
    one = runs.drop_duplicates(["model", "dataset", "seed"])
    header = one.groupby(["model", "dataset"]).agg(
        seeds=("seed", "nunique"), test_accuracy=("test_accuracy", "mean"), test_accuracy_min=("test_accuracy", "min"),
        test_accuracy_max=("test_accuracy", "max"), worst_group_accuracy=("worst_group_accuracy", "mean"),
        worst_group_accuracy_min=("worst_group_accuracy", "min"), worst_group_accuracy_max=("worst_group_accuracy", "max"),
        bg_gap=("bg_gap", "mean"), bg_gap_min=("bg_gap", "min"), bg_gap_max=("bg_gap", "max"),
        n_classes=("n_classes", "max"), n_test=("n_test", "max")).reset_index()
    header["chance"] = 1.0 / header["n_classes"].where(header["n_classes"] > 0)
    scores = with_data_keys(collection.scores, collection)
    first = scores[scores["method"] == scores["method"].iloc[0]]
    for metric in model_level:
        part = first[first["metric"] == metric].groupby(["model", "dataset"])["score"]
        values = part.mean().rename(f"{metric} (eval)").reset_index()
        counts = part.count().rename(f"{metric}_n (eval)").reset_index()
        header = header.merge(values, on=["model", "dataset"], how="left").merge(counts, on=["model", "dataset"], how="left")
    return header


def with_data_keys(frame: pd.DataFrame, collection: Collection) -> pd.DataFrame:
    """``frame`` with each swept key that is not a method's appended to its ``dataset`` label (``spurious_shapes
    (dataset.spurious_correlation=0.95)``), so the header has one row per model trained, not one per seed."""
    keys = [k for k in collection.swept if not k.startswith(METHOD_KEYS) and k in frame]
    if not keys or frame.empty:
        return frame
    suffix = frame[keys].astype(str).apply(lambda row: ", ".join(f"{k}={v}" for k, v in zip(keys, row)), axis=1)
    return frame.assign(dataset=frame["dataset"] + " (" + suffix + ")")


def warn(report: Report) -> list[str]:
    lines = []
    for row in report.header.itertuples():
        if row.chance == row.chance and row.test_accuracy == row.test_accuracy and row.test_accuracy <= row.chance + NEAR_CHANCE:
            lines.append(f"model {row.model} on {row.dataset} is at or near chance (test accuracy {row.test_accuracy:.3f}, "
                         f"chance {row.chance:.3f}): its attributions explain a model that learned little")
    if REFERENCE in report.methods:
        for metric in report.metrics:
            part = report.summary[(report.summary["metric"] == metric) & (report.summary["method"] != REFERENCE)]
            if len(part) and not (part["beats_random"] == 1).any():
                lines.append(f"metric {metric}: no method beats {REFERENCE} significantly (one-sided Wilcoxon, Holm, α = {report.alpha})")
    else:
        lines.append(f"no {REFERENCE} control in this comparison: nothing says whether a method beats chance")
    runs = report.collection.runs
    raised: dict[str, list[str]] = {}  # each distinct run warning once, with the runs that raised it
    for row in runs[runs["warnings"].fillna("") != ""].sort_values(["method", "seed"]).itertuples():
        for text in str(row.warnings).splitlines():
            if text.strip():
                raised.setdefault(text.strip(), []).append(f"{row.method} seed {row.seed}")
    for text, where in raised.items():
        shown = ", ".join(where[:4]) + (f" and {len(where) - 4} more" if len(where) > 4 else "")
        lines.append(f"{text} ({len(where)} run{'s' if len(where) > 1 else ''}: {shown})")
    lines += [f"skipped {line}" for line in report.collection.skipped]
    lines += report.collection.notes
    return lines
