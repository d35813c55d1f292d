"""The statistics of a comparison: paired bootstrap intervals, paired tests with Holm's correction, rank agreement.

Units. Each metric gives a matrix ``units x methods``: a unit is one evaluated sample in one
*block* (a combination of model, dataset, seed and every swept key that is not a method's
own), so every method is scored on the same units and all comparisons are paired.

* Intervals (:func:`intervals`): 95 % bootstrap intervals of each method's headline (mean
  or median of its defined scores), the same resampled units for every method (paired).
  One block: ``scipy.stats.bootstrap`` (BCa; percentile where BCa is undefined, e.g. a
  constant score). Several blocks (seeds, models, datasets): a two-level (hierarchical)
  bootstrap, blocks resampled with replacement and then samples within each drawn block
  (Davison & Hinkley 1997, sec. 3.8), so the interval holds both the sample and the seed
  variation; scipy has no hierarchical bootstrap, hence :func:`two_level`.
* Tests (:func:`pairwise`): Wilcoxon signed-rank on the paired differences
  (``scipy.stats.wilcoxon``, zero differences dropped; all-zero differences: p = 1), and
  Holm's step-down correction over the pairs of one metric (:func:`holm`; scipy has none,
  statsmodels is not a dependency). Against ``random`` (:func:`versus`): one-sided, in the
  metric's direction of "better", Holm over the methods.
* Agreement (:func:`tau`): Kendall's tau-b (``scipy.stats.kendalltau``) between two
  rankings, scores signed so that higher is better for both.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.95


def statistic(name: str):
    """The headline aggregate as a vectorised numpy reduction that skips undefined (NaN) scores."""
    return np.nanmedian if name == "median" else np.nanmean


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): monotone in the raw order, capped at 1; NaN counts as 1."""
    p = np.nan_to_num(np.asarray(p_values, dtype=float), nan=1.0)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def intervals(matrix: np.ndarray, blocks: np.ndarray, aggregate: str, seed: int, n_resamples: int) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per method (column) of ``matrix`` (units x methods), paired over units; two-level when ``blocks`` has several values."""
    if len(np.unique(blocks)) > 1:
        return two_level(matrix, blocks, aggregate, seed, n_resamples)
    reduce = statistic(aggregate)
    data = matrix[~np.isnan(matrix).all(1)].T  # methods x defined units; the bootstrap resamples the last axis, the same for every method
    low, high = np.full(matrix.shape[1], np.nan), np.full(matrix.shape[1], np.nan)
    for j in range(data.shape[0] + 1):
        # j = 0: all methods together (paired); then, a method whose interval is still undefined (a resample drew
        # none of its defined units, or BCa is undefined), alone on its defined scores
        if j and (not np.isnan(low[j - 1]) or np.sum(~np.isnan(data[j - 1])) < 2):
            continue
        sample = data if j == 0 else data[j - 1:j, ~np.isnan(data[j - 1])]
        if sample.shape[1] < 2:
            continue
        for method in ("BCa", "percentile"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # degenerate (constant) columns: BCa is undefined there, percentile follows
                result = stats.bootstrap((sample,), lambda x, axis: reduce(x, axis=axis), vectorized=True, n_resamples=n_resamples, axis=-1,
                                         confidence_level=LEVEL, method=method, rng=np.random.default_rng(seed))
            found_low, found_high = np.atleast_1d(result.confidence_interval.low), np.atleast_1d(result.confidence_interval.high)
            target = slice(None) if j == 0 else slice(j - 1, j)
            missing = np.isnan(low[target])
            low[target][missing], high[target][missing] = found_low[missing], found_high[missing]
            if not np.isnan(low[target]).any():
                break
    return low, high


def two_level(matrix: np.ndarray, blocks: np.ndarray, aggregate: str, seed: int, n_resamples: int,
              chunk: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Hierarchical percentile bootstrap: draw blocks with replacement, then units within each drawn block (paired over methods)."""
    rng = np.random.default_rng(seed)
    reduce = statistic(aggregate)
    members = [np.flatnonzero(blocks == b) for b in np.unique(blocks)]
    padded = np.vstack([matrix, np.full((1, matrix.shape[1]), np.nan)])  # row -1: the padding
    estimates = []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        picks = rng.integers(0, len(members), (size, len(members)))
        rows = []
        for j in range(len(members)):
            drawn = np.full((size, max(len(m) for m in members)), -1)
            for b, units in enumerate(members):
                hit = picks[:, j] == b
                drawn[hit, :len(units)] = units[rng.integers(0, len(units), (int(hit.sum()), len(units)))]
            rows.append(drawn)
        index = np.concatenate(rows, axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column gives NaN, on purpose
            estimates.append(reduce(padded[index], axis=1))
    draws = np.concatenate(estimates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(draws, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2], axis=0)
    return low, high


def paired_test(a: np.ndarray, b: np.ndarray, alternative: str = "two-sided") -> tuple[float, int]:
    """(p, n) of the Wilcoxon signed-rank test of ``a - b`` on the units where both are defined; p = 1 if every difference is 0."""
    keep = ~(np.isnan(a) | np.isnan(b))
    diff = a[keep] - b[keep]
    if not np.any(diff != 0):
        return 1.0, int(keep.sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few non-zero differences: scipy warns and still answers
        return float(stats.wilcoxon(diff, zero_method="wilcox", alternative=alternative).pvalue), int(keep.sum())


def pairwise(matrix: np.ndarray, methods: list[str], sign: float, alpha: float) -> pd.DataFrame:
    """Every ordered pair (a, b), a != b: n, mean difference (a - b, signed so that > 0 means a is better), p, Holm p, significant."""
    rows = []
    for i, a in enumerate(methods):
        for j, b in enumerate(methods):
            if i < j:
                p, n = paired_test(matrix[:, i], matrix[:, j])
                keep = ~(np.isnan(matrix[:, i]) | np.isnan(matrix[:, j]))
                gain = float(np.mean(sign * (matrix[keep, i] - matrix[keep, j]))) if keep.any() else float("nan")
                rows.append({"a": a, "b": b, "n": n, "gain": gain, "p": p})
    frame = pd.DataFrame(rows, columns=["a", "b", "n", "gain", "p"])
    frame["p_holm"] = holm(frame["p"]) if len(frame) else []
    frame["significant"] = frame["p_holm"] < alpha
    mirrored = frame.rename(columns={"a": "b", "b": "a"}).assign(gain=-frame["gain"])
    return pd.concat([frame, mirrored], ignore_index=True)


def versus(matrix: np.ndarray, methods: list[str], reference: str, sign: float) -> pd.Series:
    """Holm-adjusted one-sided p-values that each method is better than ``reference`` (NaN for the reference itself)."""
    if reference not in methods:
        return pd.Series(np.nan, index=methods)
    r = methods.index(reference)
    others = [i for i in range(len(methods)) if i != r]
    raw = [paired_test(sign * matrix[:, i], sign * matrix[:, r], alternative="greater")[0] for i in others]
    out = pd.Series(np.nan, index=methods)
    out.iloc[others] = holm(raw) if others else []
    return out


def tau(x, y) -> float:
    """Kendall's tau-b of two score vectors (NaN pairs dropped; NaN when fewer than 3 remain or one is constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = ~(np.isnan(x) | np.isnan(y))
    if keep.sum() < 3:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.kendalltau(x[keep], y[keep]).statistic)


def verdict(value: float, what: str) -> str:
    """One line that says how far two rankings agree."""
    if value != value:
        return f"{what}: too few methods (or a constant ranking) to tell"
    word = ("agree" if value >= 0.6 else "partly agree" if value >= 0.2 else "are unrelated" if value > -0.2
            else "disagree" if value > -0.6 else "are opposite")
    return f"{what} {word}, τ = {value:.2f}"
