"""What each run logs to MLflow, beside the run itself (opened by :func:`harness.runner.run`).

* params: the composed config, flattened (``flat_params``), and whole as ``config.yaml``;
* metrics: each metric's headline under the metric's config name (``deletion``) with its
  95 % bootstrap interval (``deletion_ci_low``/``_high``) and sample count, the mean of each
  per-sample extra (``deletion/<extra>``), model accuracies and timings; NaN headlines
  stay unlogged;
* artifacts: per-sample scores (``scores.csv``), curves (``curves/NAME.csv``, a plot, and
  the mean curve as the metric history ``NAME_curve``) and a heat-map figure.

Metrics go in batches of 1000 (point-by-point logging is about 50x slower).
"""
from __future__ import annotations

import io
import time
from typing import Any

import mlflow
import pandas as pd
import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from harness.datasets import Dataset, ImageSplit
from harness.reports import figures
from metrics import MetricResult


def flat_params(cfg: DictConfig) -> dict[str, str]:
    data = OmegaConf.to_container(cfg, resolve=True)
    out: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            out[prefix] = str(node)[:6000]

    walk("", data)
    return out


def send(run_id: str, points: list[tuple[str, float, int]]) -> None:
    """(key, value, step) points in batches of 1000 (point-by-point logging is 50x slower)."""
    now = int(time.time() * 1000)
    metrics = [Metric(key, float(value), now, step) for key, value, step in points]
    client = MlflowClient()
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i:i + 1000])


def log_batch(run_id: str, values: dict[str, float]) -> None:
    send(run_id, [(key, value, 0) for key, value in values.items()])


def log_curve(run_id: str, name: str, curve: torch.Tensor) -> None:
    """The curve as the history of metric ``NAME_curve``, one step per point."""
    send(run_id, [(f"{name}_curve", value, k) for k, value in enumerate(curve.tolist())])


def scores_table(results: dict[str, MetricResult], frame: pd.DataFrame) -> pd.DataFrame:
    for name, result in results.items():
        frame[name] = result.scores.cpu().numpy()
        for extra, values in result.extras.items():
            if values.dim() == 1 and values.numel() == len(frame):
                frame[f"{name}/{extra}"] = values.detach().cpu().numpy()
    return frame


def curve_table(result: MetricResult) -> pd.DataFrame:
    curves = result.curves.cpu().numpy()
    frame = pd.DataFrame(curves.T, columns=[f"sample_{i}" for i in range(curves.shape[0])])
    frame.insert(0, "mean", curves.mean(0))
    frame.insert(0, "x", result.curve_x.cpu().numpy())
    return frame


def log_text_frame(frame: pd.DataFrame, path: str) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    mlflow.log_text(buffer.getvalue(), path)


def log_results(cfg: DictConfig, run_id: str, summary: pd.DataFrame, results: dict[str, MetricResult], model_summary: dict[str, float],
                timings: dict[str, float], data: ImageSplit, predicted: torch.Tensor, targets: torch.Tensor,
                attributions: torch.Tensor, dataset: Dataset) -> None:
    """Log one run's numbers, tables, curves and heat maps (see the module docstring)."""
    values: dict[str, float] = dict(model_summary) | timings
    for row in summary.itertuples():
        values[row.metric] = row.value
        values[f"{row.metric}_ci_low"], values[f"{row.metric}_ci_high"] = row.ci_low, row.ci_high
        values[f"{row.metric}_n"] = row.n
        for extra, per_sample in results[row.metric].extras.items():
            if per_sample.dim() == 1:
                valid = per_sample[~torch.isnan(per_sample.float())].float()
                if valid.numel():
                    values[f"{row.metric}/{extra}"] = float(valid.mean())
    log_batch(run_id, {k: v for k, v in values.items() if v == v})  # NaN headlines stay unlogged
    for name, result in results.items():  # how many samples each headline leaves out, and why
        if result.dropped:
            MlflowClient().set_tag(run_id, f"harness.dropped.{name}", "; ".join(f"{why}: {k}" for why, k in result.dropped.items()))

    frame = pd.DataFrame({
        "index": range(len(data)), "label": data.labels.numpy(), "predicted": predicted.cpu().numpy(), "target": targets.cpu().numpy(),
    })
    if data.groups is not None:
        frame["group"] = data.groups.numpy()
    log_text_frame(scores_table(results, frame), "scores.csv")
    for name, result in results.items():
        if result.curves is not None and result.curve_x is not None:
            log_text_frame(curve_table(result), f"curves/{name}.csv")
            log_curve(run_id, name, result.curves.mean(0))
            mlflow.log_figure(figures.curves(name, result), f"curves/{name}.png")
    shown = min(int(cfg.tracking.heatmaps), len(data))
    if shown > 0:
        titles = [dataset.class_names[int(c)] for c in targets[:shown]]
        fig = figures.heatmaps(dataset.denormalise(data.images[:shown]), attributions[:shown].cpu(),
                               None if data.masks is None else data.masks[:shown], titles)
        mlflow.log_figure(fig, "heatmaps.png")
    figures.plt.close("all")
