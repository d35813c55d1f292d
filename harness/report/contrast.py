"""BAM-style model contrast: does a method's background share move when the model's reliance on the background does?

Yang & Kim (2019, "Benchmarking Attribution Methods with Relative Feature Importance",
BAM) train two models on the same images, one for which a feature is important and one
for which it is not, and score an attribution method by how much more attribution it gives
that feature under the first model than under the second (their *model contrast score*).
Here the feature is the background, the two models are trained with the spurious
correlation (the highest value of ``dataset.spurious_correlation`` in the sweep) and
without it (``0.5``, where the background says little about the class, else the lowest
value swept), and the attribution on the background is the ``spurious_background`` metric
(nSBR: 0 uniform, +1 all on the background, -1 all on the object; :mod:`metrics.spurious_background`).

Definition, per method, with ``s_c(i)`` the score of sample ``i`` under the model trained
at correlation ``c`` (same seed: the test split, hence sample ``i``, is the same image for
every correlation; :mod:`harness.datasets.spurious_shapes`):

    contrast = mean over (seed, sample) of  s_high(i) - s_low(i)

over the pairs where both scores are defined, with a 95 % paired bootstrap interval
(two-level over seeds then samples when several seeds; :func:`harness.report.stats.intervals`).
The models' own reliance is their BG-gap (test-split accuracy on same-class minus
other-class backgrounds, Xiao et al. ICLR 2021): ``gap_difference`` = mean BG-gap at
``high`` minus at ``low``. Each method also gets Kendall's tau, over the blocks (seed x
correlation), between its mean score and the model's BG-gap (``tau_bg_gap``, should be
positive) and worst-group accuracy (``tau_worst_group``, should be negative).

Verdicts (``verdict``): when the models differ (``gap_difference >= GAP_MIN``), a
non-control method whose contrast is below ``CONTRAST_MIN`` or whose interval reaches 0
*fails to show the shortcut the model demonstrably uses*, and is named in the report's
warnings; a control (``random``, ``sobel``, ``constant``) should not move, and one whose
interval excludes 0 by at least ``CONTRAST_MIN`` is named too. When the models do not
differ, nothing is flagged: the contrast cannot rank methods then. Methods are ranked by
contrast (1 = the largest).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.report import stats
from harness.report.leaderboard import is_control
from harness.report.load import Collection

KEY = "dataset.spurious_correlation"
METRIC = "spurious_background"
WITHOUT = 0.5            # the correlation of the model trained "without" the shortcut, when swept
GAP_MIN = 0.25           # BG-gap difference from which the two models count as relying differently on the background
CONTRAST_MIN = 0.1       # on the nSBR scale (-1 .. 1): a smaller contrast counts as "does not move"
COLUMNS = ["method", "control", "low", "high", "contrast", "ci_low", "ci_high", "n", "rank", "gap_difference",
           "tau_bg_gap", "tau_worst_group", "verdict", "flagged"]


def _level(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def levels(collection: Collection, key: str = KEY) -> tuple[float, float] | None:
    """(low, high): the correlations of the models compared, or None when ``key`` was not swept over two numbers."""
    if key not in collection.swept:
        return None
    values = sorted({v for v in map(_level, collection.scores[key].unique()) if v == v})
    if len(values) < 2:
        return None
    return (WITHOUT if WITHOUT in values else values[0]), values[-1]


def per_block(collection: Collection, key: str = KEY, metric: str = METRIC) -> pd.DataFrame:
    """One row per (method, model, dataset, seed, correlation): the method's mean score and the model's BG-gap,
    worst-group and test accuracy."""
    scores = collection.scores[collection.scores["metric"] == metric].assign(level=lambda f: f[key].map(_level))
    where = ["model", "dataset", "seed", "level"]
    means = scores.groupby(["method", *where])["score"].mean().rename("score").reset_index()
    runs = collection.runs.assign(level=collection.runs[key].map(_level))
    model = runs.groupby(where)[["bg_gap", "worst_group_accuracy", "test_accuracy"]].mean().reset_index()
    return means.merge(model, on=where, how="left")


def model_contrast(collection: Collection, key: str = KEY, metric: str = METRIC, seed: int = 0,
                   n_resamples: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """``(contrast, by_level)``: one row per method (:data:`COLUMNS`, sorted by rank) and the per-block table of
    :func:`per_block`; None when the collection has no ``metric`` scores or ``key`` was not swept (module docstring)."""
    pair = levels(collection, key)
    if pair is None or metric not in set(collection.scores["metric"]):
        return None
    low, high = pair
    blocks = per_block(collection, key, metric)
    models = blocks.drop_duplicates(["model", "dataset", "seed", "level"]).groupby("level")["bg_gap"].mean()
    gap_difference = float(models.get(high, math.nan) - models.get(low, math.nan))
    scores = collection.scores[collection.scores["metric"] == metric].assign(level=lambda f: f[key].map(_level))
    where = ["model", "dataset", "seed", "sample"]
    table = scores[scores["level"].isin([low, high])].pivot_table(index=[*where, "method"], columns="level", values="score",
                                                                    aggfunc="mean", dropna=False)
    difference = (table.get(high) - table.get(low)).unstack("method") if low in table and high in table else pd.DataFrame()
    methods = sorted(scores["method"].unique(), key=lambda m: (is_control(m), m))
    difference = difference.reindex(columns=methods)
    matrix = difference.to_numpy(dtype=float)
    units = pd.factorize(difference.index.droplevel("sample"))[0] if len(difference) else np.zeros(0, int)
    defined = ~np.isnan(matrix).all(1) if matrix.size else np.zeros(0, bool)
    matrix, units = matrix[defined], units[defined]
    with np.errstate(all="ignore"):
        values = np.nanmean(matrix, axis=0) if len(matrix) else np.full(len(methods), np.nan)
    ci_low, ci_high = (stats.intervals(matrix, units, "mean", seed, n_resamples) if len(matrix) >= 2
                       else (np.full(len(methods), np.nan), np.full(len(methods), np.nan)))
    rows = []
    for j, method in enumerate(methods):
        own = blocks[blocks["method"] == method]
        rows.append({"method": method, "control": is_control(method), "low": low, "high": high, "contrast": values[j],
                     "ci_low": ci_low[j], "ci_high": ci_high[j], "n": int((~np.isnan(matrix[:, j])).sum()) if len(matrix) else 0,
                     "gap_difference": gap_difference, "tau_bg_gap": stats.tau(own["score"], own["bg_gap"]),
                     "tau_worst_group": stats.tau(own["score"], own["worst_group_accuracy"])})
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("rank", "verdict", "flagged")])
    frame["rank"] = (-frame["contrast"]).rank(method="average", na_option="keep")
    frame["verdict"], frame["flagged"] = zip(*(verdict(r) for r in frame.itertuples())) if len(frame) else ((), ())
    return frame[COLUMNS].sort_values(["rank", "method"]).reset_index(drop=True), blocks


def verdict(row) -> tuple[str, bool]:
    """(one line, flagged) for one method's contrast (module docstring)."""
    if row.contrast != row.contrast:
        return "no pair of samples scored under both models", False
    if not row.gap_difference >= GAP_MIN:
        return (f"the two models' BG-gaps differ by {row.gap_difference:.2f} (< {GAP_MIN}): they rely alike on the background, "
                "so the contrast does not rank methods"), False
    reaches_zero = not row.ci_low > 0 or row.ci_low != row.ci_low
    if row.control:
        if abs(row.contrast) >= CONTRAST_MIN and not (row.ci_low <= 0 <= row.ci_high):
            return f"control moves ({row.contrast:+.2f}): the score responds to something other than the model", True
        return "control, does not move (as it should)", False
    if row.contrast < CONTRAST_MIN or reaches_zero:
        return (f"fails to show the shortcut: contrast {row.contrast:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}] while the "
                f"models' BG-gap rises by {row.gap_difference:.2f}"), True
    return "shows the shortcut", False


def markdown(contrast: pd.DataFrame, blocks: pd.DataFrame, key: str = KEY) -> str:
    """The report section: the contrast per method, then the mean score per correlation beside the models."""
    low, high = contrast["low"].iloc[0], contrast["high"].iloc[0]
    num = lambda v, f="+.3f": "–" if v != v else format(v, f)  # noqa: E731
    parts = ["## Model contrast (BAM)", "",
             f"Per method, the mean paired difference of `{METRIC}` between the model trained at `{key}={high:g}` and the one "
             f"trained at `{low:g}`, on the same images (Yang & Kim 2019's model contrast score), with a 95 % bootstrap interval. "
             "The models' BG-gap difference says how much more the first relies on the background; τ: Kendall's tau over the "
             "blocks (seed × correlation) between the method's mean score and the model's BG-gap and worst-group accuracy.", "",
             "| rank | method | contrast [95 % CI] | n | τ with BG-gap | τ with worst-group accuracy | verdict |",
             "|---|---|---|---|---|---|---|"]
    for r in contrast.itertuples():
        name = f"*{r.method}* (control)" if r.control else r.method
        parts.append(f"| {num(r.rank, 'g')} | {name} | {num(r.contrast)} [{num(r.ci_low)}, {num(r.ci_high)}] | {r.n} | "
                     f"{num(r.tau_bg_gap, '.2f')} | {num(r.tau_worst_group, '.2f')} | {'**' if r.flagged else ''}{r.verdict}"
                     f"{'**' if r.flagged else ''} |")
    grid = blocks.groupby(["method", "level"])["score"].mean().unstack("level")
    order = list(contrast["method"])
    models = blocks.drop_duplicates(["model", "dataset", "seed", "level"]).groupby("level")[
        ["test_accuracy", "worst_group_accuracy", "bg_gap"]].mean()
    heads = [f"{level:g}" for level in grid.columns]
    parts += ["", f"Mean `{METRIC}` per `{key}` (over seeds), and the models (test split, mean over seeds):", "",
              "| | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for label, column in (("model: test accuracy", "test_accuracy"), ("model: worst-group accuracy", "worst_group_accuracy"),
                          ("model: BG-gap", "bg_gap")):
        parts.append(f"| {label} | " + " | ".join(num(models[column].get(level, math.nan), ".3f") for level in grid.columns) + " |")
    for method in order:
        name = f"*{method}* (control)" if is_control(method) else method
        parts.append(f"| {name} | " + " | ".join(num(v) for v in grid.loc[method]) + " |")
    return "\n".join(parts) + "\n"


def warnings_of(contrast: pd.DataFrame) -> list[str]:
    """One report warning per flagged method."""
    return [f"model contrast: {r.method} {r.verdict}" for r in contrast.itertuples() if r.flagged]
