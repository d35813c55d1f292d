"""What each run logs to MLflow, beside the run itself (opened by :func:`harness.runner.run`).

* params: the composed config, flattened (``flat_params``), and whole as ``config.yaml``, and the
  plain names ``method``, ``model``, ``dataset`` beside ``seed`` for grouping in MLflow's UI
  (``choice_params``);
* tags: each metric's direction ``harness.better.NAME`` (``higher``/``lower``) and aggregate
  ``harness.aggregate.NAME`` (``mean``/``median``), which reports read back, and the
  experiment's ``mlflow.experimentKind`` (the machine-learning view of MLflow's UI); the run's
  description (``mlflow.note.content``) is its headline table, so the headlines are found first;
* metrics: each metric's headline under the metric's config name (``deletion``) with its
  95 % bootstrap interval (``deletion_ci_low``/``_high``) and sample count, the mean of each
  per-sample extra (``deletion/<extra>``), model accuracies (test, train, worst group, per
  test variant, BG-gap) and timings; NaN headlines stay unlogged. The accuracy of each
  (class, group) is the table ``group_accuracy.csv``, not 16 metrics listed (alphabetically)
  between the headlines;
* artifacts: per-sample scores (``scores.csv``), curves (``curves/NAME.csv``, a plot, and
  the mean curve as the metric history ``NAME_curve``), a heat-map figure and its data
  (``heatmaps.npz``: the first ``tracking.heatmaps`` channel-summed maps as float16, the
  images as uint8 in [0, 255], the masks if any) for the report's methods x samples grid.

Metrics go in batches of 1000 (point-by-point logging is about 50x slower).
"""
from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.entities import Metric, RunTag
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


EXPERIMENT_KIND = "mlflow.experimentKind"  # the tag MLflow's UI reads to choose the experiment's view


def choice_params(names: dict[str, str]) -> dict[str, str]:
    """The plain params ``method``, ``model``, ``dataset`` (config names) to group runs by in MLflow's UI."""
    return {key: names[key] for key in ("method", "model", "dataset") if key in names}


def metric_tags(summary: pd.DataFrame) -> dict[str, str]:
    """Each metric's direction and aggregate as tags (``harness.better.NAME``, ``harness.aggregate.NAME``)."""
    tags = {}
    for row in summary.itertuples():
        tags[f"harness.better.{row.metric}"] = row.better
        tags[f"harness.aggregate.{row.metric}"] = row.aggregate
    return tags


def headline_note(summary: pd.DataFrame, model_summary: dict[str, float]) -> str:
    """The run's description in MLflow: a Markdown table of its headlines and the model's accuracies."""
    lines = ["| metric | value | 95% CI | n | better |", "|---|---|---|---|---|"]
    for row in summary.itertuples():
        lines.append(f"| {row.metric} | {row.value:.4f} | [{row.ci_low:.4f}, {row.ci_high:.4f}] | {row.n} | {row.better} |")
    names = {"test_accuracy": "test accuracy", "worst_group_accuracy": "worst-group accuracy", "test_accuracy/bg_gap": "BG-gap on the whole test split"}
    model = [f"{label} {model_summary[key]:.4f}" for key, label in names.items() if key in model_summary]
    return "\n".join(lines + ([""] + ["model: " + ", ".join(model)] if model else []))


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


GROUP_PREFIX = "group_accuracy/"


def group_table(groups: dict[str, float]) -> pd.DataFrame:
    """``group_accuracy/<class>_on_<group>`` accuracies as a table: group (``<class>_on_<group>``), accuracy."""
    return pd.DataFrame({"group": [k[len(GROUP_PREFIX):] for k in groups], "accuracy": list(groups.values())})


def log_heatmap_data(pixels: torch.Tensor, attributions: torch.Tensor, masks: torch.Tensor | None) -> None:
    """``heatmaps.npz`` of the open run: channel-summed maps (float16), images (uint8, N x H x W x C), masks (bool) if any."""
    arrays = {"maps": attributions.detach().float().sum(1).cpu().numpy().astype(np.float16),
              "images": (pixels.detach().cpu().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()}
    if masks is not None:
        arrays["masks"] = (masks[:, 0] > 0.5).cpu().numpy()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "heatmaps.npz"
        np.savez_compressed(path, **arrays)
        mlflow.log_artifact(str(path))


def log_results(cfg: DictConfig, run_id: str, summary: pd.DataFrame, results: dict[str, MetricResult], model_summary: dict[str, float],
                timings: dict[str, float], data: ImageSplit, predicted: torch.Tensor, targets: torch.Tensor,
                attributions: torch.Tensor, dataset: Dataset, indices: torch.Tensor | None = None) -> None:
    """Log one run's numbers, tables, curves and heat maps (see the module docstring)."""
    groups = {k: v for k, v in model_summary.items() if k.startswith(GROUP_PREFIX)}  # a table, not 16 metrics above the headlines
    values: dict[str, float] = {}  # headlines first: MLflow's run page lists metrics in the order they were logged
    for row in summary.itertuples():
        values[row.metric] = row.value
        values[f"{row.metric}_ci_low"], values[f"{row.metric}_ci_high"] = row.ci_low, row.ci_high
        values[f"{row.metric}_n"] = row.n
        for extra, per_sample in results[row.metric].extras.items():
            if per_sample.dim() == 1:
                valid = per_sample[~torch.isnan(per_sample.float())].float()
                if valid.numel():
                    values[f"{row.metric}/{extra}"] = float(valid.mean())
    values |= {k: v for k, v in model_summary.items() if k not in groups} | timings
    log_batch(run_id, {k: v for k, v in values.items() if v == v})  # NaN headlines stay unlogged
    tags = metric_tags(summary) | {"mlflow.note.content": headline_note(summary, model_summary)}
    for name, result in results.items():  # how many samples each headline leaves out, and why
        if result.dropped:
            tags[f"harness.dropped.{name}"] = "; ".join(f"{why}: {k}" for why, k in result.dropped.items())
    client = MlflowClient()
    client.log_batch(run_id, tags=[RunTag(key, value) for key, value in tags.items()])
    # the experiment's kind; MLflow 3.17's UI still opens in its GenAI view until "Model training" is chosen (a setting of the
    # browser) or the address carries ?workflowType=machine_learning
    client.set_experiment_tag(client.get_run(run_id).info.experiment_id, EXPERIMENT_KIND, "custom_model_development")

    frame = pd.DataFrame({
        "index": range(len(data)) if indices is None else indices.cpu().numpy(), "label": data.labels.numpy(),
        "predicted": predicted.cpu().numpy(), "target": targets.cpu().numpy(),
    })
    if data.groups is not None:
        frame["group"] = data.groups.numpy()
    log_text_frame(scores_table(results, frame), "scores.csv")
    if groups:
        log_text_frame(group_table(groups), "group_accuracy.csv")
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
        log_heatmap_data(dataset.denormalise(data.images[:shown]), attributions[:shown], None if data.masks is None else data.masks[:shown])
    figures.plt.close("all")
