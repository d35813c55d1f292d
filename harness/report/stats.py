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
* Several blocks (seeds, models, datasets): the test is *stratified* by block
  (:func:`stratified_test`), not run on the pooled (block, sample) pairs. Sample ``j`` of
  one seed is not the image ``j`` of another (the data and the evaluated samples are drawn
  from the seed), so scores cannot be averaged over seeds per sample; instead the
  differences are ranked within each block and the blocks' signed-rank statistics summed,
  ``Z = sum_b (T_b - E T_b) / sqrt(sum_b Var T_b)`` (normal approximation, ties corrected;
  the stratified signed-rank test, cf. van Elteren 1960 for the rank-sum analogue). A
  block whose model gives larger differences then weighs by its sample count, not by its
  scale, as it would in a pooled ranking.
* Groups (:func:`friedman`, :func:`letters`): Friedman's test over the units (every method
  defined; ``scipy.stats.friedmanchisquare``), then a compact letter display of the Holm
  pairwise results (Piepho 2004, insert-and-absorb): two methods share a letter exactly when
  they are not significantly different; "a" holds the best method. When Friedman's test is
  not significant at the level, every method gets the one letter "a" (the closed, protected
  procedure of Demšar 2006, sec. 3.2.2).
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


def stratified_test(a: np.ndarray, b: np.ndarray, blocks: np.ndarray | None = None, alternative: str = "two-sided") -> tuple[float, int]:
    """(p, n) of the Wilcoxon signed-rank test of ``a - b``, stratified by ``blocks`` when it has several values (module docstring).

    One block (or None): :func:`paired_test` (scipy's exact or normal p-value). Several: the blocks' signed-rank
    statistics, each on its own ranks, summed, with the normal approximation (ties corrected); p = 1 when every
    difference is 0.
    """
    if blocks is None or len(np.unique(blocks)) < 2:
        return paired_test(a, b, alternative)
    keep = ~(np.isnan(a) | np.isnan(b))
    diff, strata = (a - b)[keep], blocks[keep]
    centred, variance = 0.0, 0.0
    for block in np.unique(strata):
        d = diff[strata == block]
        d = d[d != 0]
        if not len(d):
            continue
        ranked = stats.rankdata(np.abs(d))
        n = len(d)
        _, ties = np.unique(ranked, return_counts=True)
        centred += ranked[d > 0].sum() - n * (n + 1) / 4
        variance += n * (n + 1) * (2 * n + 1) / 24 - (ties ** 3 - ties).sum() / 48
    if variance <= 0:
        return 1.0, int(keep.sum())
    z = centred / np.sqrt(variance)
    p = {"two-sided": 2 * stats.norm.sf(abs(z)), "greater": stats.norm.sf(z), "less": stats.norm.cdf(z)}[alternative]
    return float(min(1.0, p)), int(keep.sum())


def pairwise(matrix: np.ndarray, methods: list[str], sign: float, alpha: float, blocks: np.ndarray | None = None) -> pd.DataFrame:
    """Every ordered pair (a, b), a != b: n, mean difference (a - b, signed so that > 0 means a is better), p, Holm p, significant.

    ``blocks`` (one per unit): the test is stratified by them when there are several (:func:`stratified_test`).
    """
    rows = []
    for i, a in enumerate(methods):
        for j, b in enumerate(methods):
            if i < j:
                p, n = stratified_test(matrix[:, i], matrix[:, j], blocks)
                keep = ~(np.isnan(matrix[:, i]) | np.isnan(matrix[:, j]))
                gain = float(np.mean(sign * (matrix[keep, i] - matrix[keep, j]))) if keep.any() else float("nan")
                rows.append({"a": a, "b": b, "n": n, "gain": gain, "p": p})
    frame = pd.DataFrame(rows, columns=["a", "b", "n", "gain", "p"])
    frame["p_holm"] = holm(frame["p"]) if len(frame) else []
    frame["significant"] = frame["p_holm"] < alpha
    mirrored = frame.rename(columns={"a": "b", "b": "a"}).assign(gain=-frame["gain"])
    return pd.concat([frame, mirrored], ignore_index=True)


def versus(matrix: np.ndarray, methods: list[str], reference: str, sign: float, blocks: np.ndarray | None = None) -> pd.Series:
    """Holm-adjusted one-sided p-values that each method is better than ``reference`` (NaN for the reference itself); stratified by ``blocks``."""
    if reference not in methods:
        return pd.Series(np.nan, index=methods)
    r = methods.index(reference)
    others = [i for i in range(len(methods)) if i != r]
    raw = [stratified_test(sign * matrix[:, i], sign * matrix[:, r], blocks, alternative="greater")[0] for i in others]
    out = pd.Series(np.nan, index=methods)
    out.iloc[others] = holm(raw) if others else []
    return out


def friedman(matrix: np.ndarray) -> tuple[float, float, int]:
    """(chi-square, p, units) of Friedman's test on the units where every method (column) is defined; NaN below 3 methods or 2 units."""
    complete = matrix[~np.isnan(matrix).any(1)]
    if matrix.shape[1] < 3 or len(complete) < 2:
        return float("nan"), float("nan"), len(complete)
    if np.all(complete == complete[:, :1]):
        return 0.0, 1.0, len(complete)  # every method the same on every unit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.friedmanchisquare(*complete.T)
    return float(result.statistic), float(result.pvalue), len(complete)


def letters(methods: list[str], different: set[frozenset[str]]) -> dict[str, str]:
    """Compact letter display (Piepho 2004, insert-and-absorb): methods in best-first order, ``different`` the significant pairs.

    Two methods share a letter if and only if their pair is not in ``different``; letters are given in the order of
    each group's best member, so the best method's group is "a". Beyond 26 groups letters continue as "a1", "b1", ...
    """
    columns: list[set[str]] = [set(methods)]
    for pair in different:
        i, j = tuple(pair)
        split = []
        for column in columns:
            if i in column and j in column:
                split += [column - {i}, column - {j}]
            else:
                split.append(column)
        columns = [c for k, c in enumerate(split) if c and not any(c < o or (c == o and m < k) for m, o in enumerate(split))]
    order = {m: k for k, m in enumerate(methods)}
    columns.sort(key=lambda c: sorted(order[m] for m in c))
    names = [chr(ord("a") + k % 26) + (str(k // 26) if k >= 26 else "") for k in range(len(columns))]
    return {m: "".join(name for name, c in zip(names, columns) if m in c) for m in methods}


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
