"""The sanity checks in a report (Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, NeurIPS 2018): example maps
per cascade stage, and the data randomisation (random-labels) test.

Two parts, each only where the report's runs hold what it needs (``report.md``, section "Sanity checks"):

* **Example maps per cascade stage** (``cascade_maps.png``/``.pdf``/``.npz``): for each method (its first run
  trained on the true labels, lowest seed), the first ``n`` evaluation images of the run, its original map and
  its map after each stage of the run's cascading randomisation metric (a ``metrics.randomization.Randomization``
  with ``cascade: true``; its own layers, order, seed and re-initialisation, so the stages are the metric's).
  Nothing is trained: the model is rebuilt from the run's ``config.yaml`` and the model cache
  (:func:`harness.report.prototypes.model_of_run`), the images from the run's ``eval_indices.json``, and the
  metric is re-run with an explainer that records every map it is asked for. Maps are shown as
  |channel sum| divided by each map's largest value (Adebayo et al. show absolute maps too).
* **Random-labels test** (``random_labels.csv``): where the runs sweep ``model.training.random_labels``, for
  every method and seed the Spearman rank correlation of the |maps| (``metrics.randomization.spearman``)
  between the run on the true-label model and the run on the random-label model, per sample over the
  evaluation samples both logged (``heatmaps.npz``, so ``tracking.heatmaps`` must cover them; the two runs
  must have evaluated the same indices), with its mean and a 95 % Student-t interval over the samples.
  Lower: the maps depend on what the model learnt (the paper's finding for gradients); the model-independent
  controls score 1.
"""
from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from scipy.stats import t as t_dist  # noqa: E402

from harness.build import build  # noqa: E402
from harness.cache import cached_split  # noqa: E402
from harness.datasets import Streams  # noqa: E402
from harness.report.prototypes import model_of_run  # noqa: E402
from methods import Explainer  # noqa: E402
from metrics.randomization import Randomization, spearman  # noqa: E402

RANDOM_LABELS = "model.training.random_labels"
RANDOMIZATION = "metrics.randomization.Randomization"


def _download(client: MlflowClient, run_id: str, name: str, tmp: str):
    return client.download_artifacts(run_id, name, tempfile.mkdtemp(dir=tmp))


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    v = values[np.isfinite(values)]
    if len(v) < 2:
        return (float(v.mean()) if len(v) else math.nan), math.nan, math.nan
    half = float(t_dist.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def _true(value) -> bool | None:
    text = str(value).strip().lower()
    return True if text == "true" else False if text == "false" else None


def random_labels(collection) -> pd.DataFrame:
    """One row per (method, seed) with both a true-label and a random-label run: similarity of their maps (module docstring)."""
    columns = ["method", "seed", "similarity", "ci_low", "ci_high", "n", "true_run", "random_run"]
    runs = collection.runs
    if runs.empty or RANDOM_LABELS not in runs:
        return pd.DataFrame(columns=columns)
    client = MlflowClient(collection.uri)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for (method, seed), group in runs.groupby(["method", "seed"], sort=True):
            kinds = group[RANDOM_LABELS].map(_true)
            true_runs, random_runs = group[kinds == False], group[kinds == True]  # noqa: E712 - None (unknown) is neither
            if true_runs.empty or random_runs.empty:
                continue
            pair = (true_runs.iloc[0]["run"], random_runs.iloc[0]["run"])
            try:
                maps = [np.load(_download(client, r, "heatmaps.npz", tmp))["maps"] for r in pair]
                indices = [json.loads(Path(_download(client, r, "eval_indices.json", tmp)).read_text()) for r in pair]
            except Exception:  # noqa: BLE001 - a run without heat maps is left out, as the heat-map figure leaves it out
                continue
            n = min(len(maps[0]), len(maps[1]))
            if n == 0 or indices[0][:n] != indices[1][:n]:
                continue
            a, b = (torch.from_numpy(m[:n].astype(np.float64)).flatten(1).abs() for m in maps)
            mean, low, high = _interval(spearman(a, b).numpy())
            rows.append({"method": method, "seed": int(seed), "similarity": mean, "ci_low": low, "ci_high": high, "n": n,
                         "true_run": pair[0], "random_run": pair[1]})
    return pd.DataFrame(rows, columns=columns)


def cascade_metric(cfg) -> Randomization | None:
    """The run's cascading randomisation metric, built as the run built it, or None."""
    for name, node in cfg.get("metric", {}).items():
        if str(node.get("_target_", "")) == RANDOMIZATION and bool(node.get("cascade", True)):
            built = build(node, f"metric.{name}", seed=cfg.seed)
            return built if isinstance(built, Randomization) else None
    return None


def cascade_maps(client: MlflowClient, run_id: str, n: int = 2) -> dict | None:
    """A run's first ``n`` evaluation images, original maps and maps after each cascade stage (None without the metric,
    or without the run's ``config.yaml`` or ``eval_indices.json``)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            cfg = OmegaConf.load(_download(client, run_id, "config.yaml", tmp))
            indices = json.loads(Path(_download(client, run_id, "eval_indices.json", tmp)).read_text())[:n]
        except Exception:  # noqa: BLE001 - a run logged without its config or indices has no cascade to redraw
            return None
    metric = cascade_metric(cfg)
    if metric is None or not indices:
        return None
    model, dataset = model_of_run(client, run_id)
    explainer = build(cfg.method, "method", seed=cfg.seed, contract=Explainer)
    split = dataset.view("test") if isinstance(dataset, Streams) else cached_split(cfg, dataset, "test", Path(str(cfg.paths.cache)).expanduser().resolve())
    data = split.select(torch.tensor(indices))
    x = data.images
    with torch.no_grad():
        targets = model(x).argmax(1) if cfg.eval.get("target", "predicted") == "predicted" else data.labels
    recorded: list[torch.Tensor] = []

    def recording(net, inputs, classes):
        maps = explainer(net, inputs, classes)
        recorded.append(maps.detach().sum(1).cpu())
        return maps

    original = explainer(model, x, targets)
    metric(model, x, targets, original, explainer=recording)
    layers = [name for name, _ in Randomization.layers(model)][: metric.max_layers]
    pixels = dataset.denormalise(x).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return {"images": pixels, "maps": torch.stack([original.detach().sum(1).cpu(), *recorded]).numpy(), "stages": ["original", *layers]}


def cascade_figure(found: dict[str, dict]):
    """Rows: method x sample; columns: the input, the original map, then each cascade stage (|map| / its max)."""
    rows = [(method, j) for method, f in found.items() for j in range(len(f["images"]))]
    n_cols = 1 + max(len(f["stages"]) for f in found.values())
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.05 * n_cols + 0.8, 1.1 * len(rows) + 0.7), squeeze=False)
    for i, (method, j) in enumerate(rows):
        f = found[method]
        image = f["images"][j]
        axes[i, 0].imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_ylabel(f"{method}\n#{j}", fontsize=6)
        for k in range(n_cols - 1):
            ax = axes[i, k + 1]
            if k >= len(f["stages"]):
                ax.axis("off")
                continue
            m = np.abs(f["maps"][k, j])
            ax.imshow(m / (m.max() or 1.0), cmap="gray", vmin=0, vmax=1)
            if i == 0 or rows[i - 1][0] != method:
                ax.set_title(f["stages"][k] if k == 0 else f"+{f['stages'][k]}", fontsize=5, pad=2)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("input", fontsize=5, pad=2)
    fig.suptitle("cascading randomisation from the logits down: |map| / its max after each layer is re-initialised", fontsize=7)
    fig.tight_layout()
    return fig


def cascade_panels(report, n: int = 2) -> tuple[dict[str, dict], list[str]]:
    """Per method, :func:`cascade_maps` of its first true-label run (lowest seed); one line per method left out."""
    runs = report.collection.runs
    if runs.empty:
        return {}, []
    if RANDOM_LABELS in runs:
        runs = runs[runs[RANDOM_LABELS].map(_true) != True]  # noqa: E712 - the true-label model's maps
    client = MlflowClient(report.collection.uri)
    found, missing = {}, []
    for method in report.methods:
        rows = runs[runs["method"] == method].sort_values("seed")
        if rows.empty:
            continue
        try:
            maps = cascade_maps(client, rows.iloc[0]["run"], n)
        except (ValueError, FileNotFoundError, OSError) as error:
            missing.append(f"cascade maps of {method}: {' '.join(str(error).split())[:200]}")
            continue
        if maps is not None:
            found[method] = maps
    return found, missing


def section(report, folder: Path | None = None) -> str:
    """The "Sanity checks" section (module docstring) as Markdown, with its files written to ``folder``; '' when nothing applies."""
    found, missing = cascade_panels(report)
    report.warnings += missing
    labels = random_labels(report.collection)
    if not found and labels.empty:
        return ""
    parts = ["## Sanity checks", ""]
    if found and folder is not None:
        fig = cascade_figure(found)
        for suffix in ("png", "pdf"):
            fig.savefig(folder / f"cascade_maps.{suffix}", dpi=150)
        plt.close(fig)
        np.savez_compressed(folder / "cascade_maps.npz", **{f"{m}/{k}": np.asarray(v) for m, f in found.items() for k, v in f.items()})
        parts += ["Example maps per cascade stage (the first evaluation images of each method's run, re-explained after each "
                  "layer of the run's cascading randomisation, `harness.report.sanity`):", "", "![cascade maps](cascade_maps.png)", ""]
    if not labels.empty:
        if folder is not None:
            labels.to_csv(folder / "random_labels.csv", index=False)
        parts += ["Data randomisation (random-labels) test: Spearman ρ of the |maps| of the model trained on the true labels and "
                  "the one trained on permuted labels (`model.training.random_labels`), same images; lower: the maps depend on "
                  "what the model learnt; [95 % t-interval over the samples].", "",
                  "| method | seed | similarity true vs random labels | n |", "|---|---|---|---|"]
        fmt = lambda v: "–" if v != v else f"{v:.3f}"  # noqa: E731
        parts += [f"| {r.method} | {r.seed} | {fmt(r.similarity)} [{fmt(r.ci_low)}, {fmt(r.ci_high)}] | {r.n} |"
                  for r in labels.sort_values("similarity").itertuples()]
        parts += [""]
    return "\n".join(parts)
