"""The report's figures (matplotlib, Agg), each saved as PNG and PDF by :func:`draw_all`.

* ``curves_NAME``: a curve metric's mean curve per method over every logged sample curve
  (all runs of the method), with a pointwise 95 % band (mean ± 1.96 standard errors);
* ``metric_scatter``: each pair of metrics, one point per method (its headline), Kendall's
  tau in the title;
* ``rank_stability``: each method's rank per metric in every block (seed, model, ...), when
  there are several;
* ``sbr_vs_bg_gap``: the spurious-background ratio per method (with its interval) beside
  each model's BG-gap, when ``spurious_background`` was scored;
* ``heatmap_grid``: methods x samples of the first block (model, dataset, seed), each map
  over its image with the object's outline, scaled by its own largest magnitude (one shared
  colour bar, -1..1), titled with the sample's score on the first metric (from each run's
  ``heatmaps.npz``; runs logged before it existed are left out).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from harness.report.leaderboard import Report  # noqa: E402

DPI = 100
SBR = "spurious_background"


def _colours(methods: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


def curves(report: Report, metric: str):
    frame = report.collection.curves
    frame = frame[frame["metric"] == metric]
    if frame.empty:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.6))
    colours = _colours(report.methods)
    for method in report.methods:
        part = frame[frame["method"] == method]
        if part.empty:
            continue
        grouped = part.groupby("x")["value"]
        x, mean = np.asarray(grouped.mean().index, float), grouped.mean().to_numpy()
        half = 1.96 * (grouped.std(ddof=1) / np.sqrt(grouped.count())).fillna(0).to_numpy()
        style = "--" if method.split(" (")[0] in ("random", "sobel", "constant") else "-"
        ax.plot(x, mean, style, color=colours[method], linewidth=1.5, label=method)
        ax.fill_between(x, mean - half, mean + half, color=colours[method], alpha=0.15, linewidth=0)
    ax.set_xlabel("fraction of features changed")
    ax.set_ylabel("score of the explained class")
    ax.set_title(f"{metric}: mean curve, 95 % band")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def scatter(report: Report):
    pairs = report.agreement[report.agreement["kind"] == "metrics"]
    if pairs.empty:
        return None
    n = min(len(pairs), 6)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False)
    table = report.summary.pivot_table(index="method", columns="metric", values="value")
    colours = _colours(report.methods)
    for ax, row in zip(axes[0], pairs.head(n).itertuples()):
        for method in table.index:
            ax.scatter(table.loc[method, row.a], table.loc[method, row.b], color=colours[method], s=22)
            ax.annotate(method, (table.loc[method, row.a], table.loc[method, row.b]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(f"{row.a} ({report.collection.better[row.a]} is better)", fontsize=7)
        ax.set_ylabel(f"{row.b} ({report.collection.better[row.b]} is better)", fontsize=7)
        ax.set_title("τ = –" if row.tau != row.tau else f"τ = {row.tau:.2f}", fontsize=9)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    return fig


def rank_stability(report: Report):
    blocks = report.blocks
    if blocks["block"].nunique() < 2:
        return None
    n = len(report.metrics)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False, sharey=True)
    colours = _colours(report.methods)
    labels = blocks.drop_duplicates("block").sort_values("block")["block_label"].tolist()
    for ax, metric in zip(axes[0], report.metrics):
        part = blocks[blocks["metric"] == metric]
        for method in report.methods:
            ranks = part[part["method"] == method].sort_values("block")["rank"].to_numpy()
            ax.plot(range(len(ranks)), ranks, "o-", color=colours[method], label=method, linewidth=1, markersize=3)
        ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=6, ha="right")
        ax.set_title(metric, fontsize=9)
        ax.set_ylim(len(report.methods) + 0.5, 0.5)
    axes[0, 0].set_ylabel("rank (1 = best)")
    axes[0, -1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def sbr_vs_bg_gap(report: Report):
    if SBR not in report.metrics:
        return None
    part = report.summary[report.summary["metric"] == SBR].sort_values("value")
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4), gridspec_kw={"width_ratios": [3, 1]})
    y = np.arange(len(part))
    errors = np.vstack([part["value"] - part["ci_low"], part["ci_high"] - part["value"]]).clip(min=0)
    left.barh(y, part["value"], xerr=np.nan_to_num(errors), color=["0.6" if c else "C0" for c in part["control"]], capsize=2)
    left.set_yticks(y, part["method"], fontsize=7)
    left.set_xlabel(f"spurious-background ratio ({report.collection.better[SBR]} is better)")
    left.set_title("attribution on the background", fontsize=9)
    header = report.header
    right.bar(range(len(header)), header["bg_gap"].fillna(0), color="C3")
    swept = header["dataset"].str.extract(r"\((.*)\)$")[0].str.replace(r"[^=, ]+=", "", regex=True)  # swept data keys' values
    right.set_xticks(range(len(header)), [m if k != k else f"{m} {k}" for m, k in zip(header["model"], swept)], rotation=30, fontsize=7)
    right.set_ylabel("BG-gap (accuracy same - other background)", fontsize=7)
    right.set_title("model's BG-gap", fontsize=9)
    fig.tight_layout()
    return fig


def heatmap_data(report: Report) -> tuple[str, dict[str, dict[str, np.ndarray]]]:
    """The first block's label and, per method, the arrays of its run's ``heatmaps.npz``."""
    runs = report.collection.runs
    if runs.empty:
        return "", {}
    first = runs.sort_values(["model", "dataset", "seed"]).iloc[0]
    same = runs[(runs["model"] == first["model"]) & (runs["dataset"] == first["dataset"]) & (runs["seed"] == first["seed"])]
    client = MlflowClient(report.collection.uri)
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in report.methods:
            rows = same[same["method"] == method]
            if rows.empty:
                continue
            try:
                path = client.download_artifacts(rows.iloc[0]["run"], "heatmaps.npz", f"{tmp}/{len(found)}")
            except Exception:
                continue
            with np.load(path) as data:
                found[method] = {key: data[key] for key in data.files} | {"run": rows.iloc[0]["run"]}
    return f"{first['model']}, {first['dataset']}, seed {first['seed']}", found


def heatmap_grid(report: Report):
    label, found = heatmap_data(report)
    if not found:
        return None
    metric = report.metrics[0]
    scores = report.collection.scores
    methods = list(found)
    n = min(len(v["maps"]) for v in found.values())
    reference = found[methods[0]]
    fig, axes = plt.subplots(len(methods) + 1, n, figsize=(1.3 * n + 1.2, 1.3 * (len(methods) + 1) + 0.4), squeeze=False)
    shown = None
    for j in range(n):
        image = reference["images"][j]
        gray = image.mean(-1) if image.shape[-1] == 3 else image[..., 0]
        rows = [(axes[0, j], None, "input")] + [(axes[i + 1, j], m, None) for i, m in enumerate(methods)]
        for ax, method, title in rows:
            ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray") if method is None else ax.imshow(gray, cmap="gray")
            if method is not None:
                m = found[method]["maps"][j].astype(np.float32)
                limit = float(np.abs(m).max()) or 1.0
                shown = ax.imshow(m / limit, cmap="bwr", vmin=-1, vmax=1, alpha=0.65)
                part = scores[(scores["run"] == found[method]["run"]) & (scores["metric"] == metric) & (scores["sample"] == j)]["score"]
                title = f"{float(part.iloc[0]):.2f}" if len(part) else "–"
            if "masks" in reference:
                ax.contour(reference["masks"][j].astype(float), levels=[0.5], colors="k", linewidths=0.6)
            ax.set_title(title, fontsize=6, pad=2)
            ax.set_xticks([])
            ax.set_yticks([])
    for i, method in enumerate(methods):
        axes[i + 1, 0].set_ylabel(method, fontsize=6)
    fig.suptitle(f"{label}; titles: {metric} per sample", fontsize=7)
    fig.colorbar(shown, ax=axes, shrink=0.5, label="attribution / its largest magnitude")
    return fig


def draw_all(report: Report, folder: Path) -> list[str]:
    """Every figure that applies, as ``NAME.png`` and ``NAME.pdf`` in ``folder``; the PNG names, in order."""
    figures = {f"curves_{m}": (curves, (report, m)) for m in report.metrics}
    figures |= {"metric_scatter": (scatter, (report,)), "rank_stability": (rank_stability, (report,)), "sbr_vs_bg_gap": (sbr_vs_bg_gap, (report,)),
                "heatmap_grid": (heatmap_grid, (report,))}
    written = []
    folder.mkdir(parents=True, exist_ok=True)
    for name, (draw, args) in figures.items():
        fig = draw(*args)
        if fig is None:
            continue
        for ext in ("png", "pdf"):
            fig.savefig(folder / f"{name}.{ext}", dpi=DPI)
        plt.close(fig)
        written.append(f"{name}.png")
    return written
