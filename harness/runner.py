"""One benchmark run: build everything from the config, explain, score, log.

The runner is deliberately thin. :func:`prepare` builds and validates every
component (cheap, no data generated), so a bad value fails in one line before any
work; :func:`run` then generates the data, gets the trained model (cache or
training), computes the attributions once, scores them with every selected metric,
and hands the results to MLflow. A run that raises is logged as FAILED with its
traceback as ``error.txt``; it never looks finished.
"""
from __future__ import annotations

import logging
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from harness import cache, figures, progress, report, resume, tracking
from harness.build import ConfigError, build, plain
from harness.cache import content_key, target_fingerprint, torch_load
from harness.data import ImageDataset, ImageSplit
from harness.seeding import seed_everything
from harness.training import build_network, check_training, trained_model
from metrics.result import MetricResult

log = logging.getLogger(__name__)
TARGETS = ("predicted", "label")
ATTRIBUTION_VERSION = 1  # bump when the way attributions are computed here changes


@dataclass
class Components:
    dataset: ImageDataset
    explainer: Any
    metrics: dict[str, Any]
    uri: str


@dataclass
class Outcome:
    run_id: str
    summary: pd.DataFrame
    results: dict[str, MetricResult]
    model_summary: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)

    def headline(self) -> dict[str, float]:
        return dict(zip(self.summary["metric"], self.summary["value"]))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N; got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is available; use device=cpu or device=auto")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N; got {name!r}")
    return device


def check_run_settings(cfg: DictConfig) -> None:
    if not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {cfg.seed!r}")
    if not isinstance(cfg.eval.n_samples, int) or cfg.eval.n_samples < 1:
        raise ConfigError(f"eval.n_samples must be a positive integer; got {cfg.eval.n_samples!r}")
    if not isinstance(cfg.eval.batch_size, int) or cfg.eval.batch_size < 1:
        raise ConfigError(f"eval.batch_size must be a positive integer; got {cfg.eval.batch_size!r}")
    if cfg.eval.target not in TARGETS:
        raise ConfigError(f"eval.target must be one of {', '.join(TARGETS)}; got {cfg.eval.target!r}")
    if not cfg.get("metric"):
        raise ConfigError("metric selects no metric; choose at least one, e.g. metric=[deletion,insertion]")
    resolve_device(str(cfg.device))
    for key in ("cache.datasets", "cache.attributions", "sweep.resume"):
        value = OmegaConf.select(cfg, key, default=True)
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false; got {value!r}")
    timeout = OmegaConf.select(cfg, "cache.lock_timeout_s", default=1)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"cache.lock_timeout_s must be a positive number of seconds; got {timeout!r}")


def unmet_needs(metric: Any, dataset: ImageDataset) -> str | None:
    """What a metric's declared ``needs`` ("masks", "background_variants") lack in the dataset, or None."""
    needs = getattr(metric, "needs", ())
    if "masks" in needs and not getattr(dataset, "has_masks", False):
        return "foreground masks"
    swaps = ("same_class_background", "other_class_background")
    if "background_variants" in needs and not all(v in getattr(dataset, "VARIANTS", ()) for v in swaps):
        return "background-swapped test images"
    return None


def check_needs(metrics: dict[str, Any], dataset: ImageDataset) -> None:
    unmet = {name: unmet_needs(metric, dataset) for name, metric in metrics.items()}
    for name, lacking in unmet.items():
        if lacking:
            usable = ",".join(n for n, miss in unmet.items() if not miss) or "deletion,insertion"
            raise ConfigError(f"metric {name} needs {lacking}, which dataset {type(dataset).__name__} does not have; "
                              f"leave it out (metric=[{usable}]) or use a dataset that has them (spurious_shapes)")


def prepare(cfg: DictConfig, checked_uris: set[str] | None = None) -> Components:
    """Build and validate every component and the tracking store; generates and trains nothing.

    ``checked_uris`` remembers stores already checked (a sweep checks each store once).
    """
    check_run_settings(cfg)
    dataset = build(cfg.dataset, "dataset", seed=cfg.seed)
    explainer = build(cfg.method, "method", seed=cfg.seed)
    metrics = {name: build(node, f"metric.{name}", seed=cfg.seed) for name, node in cfg.metric.items()}
    check_needs(metrics, dataset)
    check_training(cfg.model)
    build_network(cfg.model, dataset)
    uri = tracking.tracking_uri(cfg)
    if checked_uris is None or uri not in checked_uris:
        tracking.check_tracking(uri)
        if checked_uris is not None:
            checked_uris.add(uri)
    return Components(dataset, explainer, metrics, uri)


# Config nodes that say where and how results are stored or shown, not what they are.
NOT_RESULTS = ("paths", "tracking", "cache", "sweep", "hydra")


def config_hash(cfg: DictConfig) -> str:
    """Hash of exactly what determines a run's results (the tag ``harness.config_hash``; resume matches on it).

    Leaves out where things are stored and how they are shown (:data:`NOT_RESULTS`:
    paths, tracking URI/experiment/run name, heat-map count, cache and sweep settings).
    """
    data = plain(cfg)
    return content_key({k: v for k, v in data.items() if k not in NOT_RESULTS})


def choice_names(cfg: DictConfig, choices: dict[str, str] | None) -> dict[str, str]:
    """The config-group option behind each component (from Hydra, or the target's name)."""
    choices = dict(choices or {})
    for group in ("model", "dataset", "method"):
        if not choices.get(group):
            node = cfg[group].get("network", cfg[group]) if group == "model" else cfg[group]
            choices[group] = str(node.get("_target_", "?")).rsplit(".", 1)[-1]
    choices["metric"] = ",".join(cfg.metric.keys())
    return choices


def run(cfg: DictConfig, choices: dict[str, str] | None = None, overrides: list[str] | None = None, job: str = "") -> Outcome:
    parts = prepare(cfg)
    device = resolve_device(str(cfg.device))
    names = choice_names(cfg, choices)
    mlflow.set_tracking_uri(parts.uri)
    experiment = tracking.experiment_id(parts.uri, cfg.tracking.experiment, tracking.artifact_root(cfg, parts.uri))
    tags = {
        "harness.config_hash": config_hash(cfg),
        "harness.method": names["method"],
        "harness.model": names["model"],
        "harness.dataset": names["dataset"],
        "harness.metrics": names["metric"],
        "harness.overrides": " ".join(overrides or []),
        "harness.job": job,
        resume.PROCESS_TAG: resume.process_token(),
    }
    run_name = cfg.tracking.run_name or f"{names['method']}-{names['dataset']}"
    with mlflow.start_run(experiment_id=experiment, run_name=run_name,
                          parent_run_id=os.environ.get(tracking.PARENT_RUN_ENV), tags=tags) as active:
        run_id = active.info.run_id
        mlflow.log_params(tracking.flat_params(cfg))
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        try:
            outcome = execute(cfg, parts, device, run_id)
        except BaseException as error:
            mlflow.log_text(traceback.format_exc(), "error.txt")
            if isinstance(error, KeyboardInterrupt):
                mlflow.end_run("KILLED")  # Ctrl-C: interrupted, not a bug in the job
            raise
    return outcome


def finished_earlier(cfg: DictConfig, parent_id: str | None = None, job: str = "") -> Any:
    """The FINISHED run that already has this config's hash (linked to the sweep's parent), or None."""
    uri = tracking.tracking_uri(cfg)
    client = MlflowClient(uri)
    experiment = tracking.experiment_id(uri, cfg.tracking.experiment, tracking.artifact_root(cfg, uri))
    earlier = resume.finished_run(client, experiment, config_hash(cfg))
    if earlier is not None:
        resume.link_to_parent(client, parent_id, job, earlier.info.run_id)
    return earlier


def execute(cfg: DictConfig, parts: Components, device: torch.device, run_id: str) -> Outcome:
    timings: dict[str, float] = {}
    seed_everything(cfg.seed)
    cache_dir = Path(str(cfg.paths.cache)).expanduser().resolve()
    start = time.perf_counter()
    train_split, test_split = (cached_split(cfg, parts.dataset, name, cache_dir) for name in ("train", "test"))
    timings["time_data_s"] = time.perf_counter() - start

    start = time.perf_counter()
    trained = trained_model(cfg.model, cfg.dataset, parts.dataset, train_split, test_split, cfg.seed, cache_dir, device, cfg.get("cache"))
    timings["time_model_s"] = time.perf_counter() - start
    log.info("model %s (%s) test accuracy %.3f", trained.key, "cached" if trained.cached else "trained", trained.summary.get("test_accuracy", float("nan")))
    mlflow.set_tag("harness.model_cache", "hit" if trained.cached else "trained")
    model = trained.model.eval()

    data = test_split.head(cfg.eval.n_samples)
    inputs, labels = data.images.to(device), data.labels.to(device)
    masks = None if data.masks is None else data.masks.to(device)
    with torch.no_grad():
        predicted = torch.cat([model(x).argmax(1) for x in inputs.split(cfg.eval.batch_size)])
    targets = predicted if cfg.eval.target == "predicted" else labels

    start = time.perf_counter()
    attributions = cached_attributions(cfg, parts, model, trained.key, inputs, targets, device, cache_dir)
    timings["time_attribution_s"] = time.perf_counter() - start

    context = {
        "labels": labels, "masks": masks, "groups": None if data.groups is None else data.groups.to(device),
        "explainer": parts.explainer, "mean": parts.dataset.mean.to(device), "std": parts.dataset.std.to(device),
        "dataset": parts.dataset, "indices": torch.arange(len(data), device=device),
    }
    results: dict[str, MetricResult] = {}
    for name, metric in progress.bar(parts.metrics.items(), desc="metrics", total=len(parts.metrics), unit="metric"):
        seed_everything(cfg.seed)
        start = time.perf_counter()
        results[name] = metric(model, inputs, targets, attributions, **context)
        timings[f"time_{name}_s"] = time.perf_counter() - start

    summary = report.summary(results, seed=cfg.seed)
    log_results(cfg, run_id, summary, results, trained.summary, timings, data, predicted, targets, attributions, parts.dataset)
    return Outcome(run_id, summary, results, trained.summary, timings)


def cached_split(cfg: DictConfig, dataset: ImageDataset, name: str, cache_dir: Path) -> ImageSplit:
    """``dataset.split(name)``, generated once per (dataset config, seed, generator code) and cached."""
    if not cfg.get("cache", {}).get("datasets", True):
        return dataset.split(name)
    key = content_key({"dataset": plain(cfg.dataset), "seed": cfg.seed, "split": name, "code": target_fingerprint(cfg.dataset)})
    about = f"{type(dataset).__name__} {name} split, seed {cfg.seed}"
    split, _ = cache.store(cache_dir, "datasets", cfg.get("cache")).fetch(
        key, lambda: dataset.split(name), load=lambda path: ImageSplit(**torch_load(path)),
        save=lambda value, path: torch.save(vars(value), path), about=about)
    return split


def attribution_key(cfg: DictConfig, model_key: str, device: torch.device) -> str:
    """Hash of what determines the attributions: model, data, method (config and code), eval settings, seed, device."""
    if model_key.startswith("file:"):  # weights from a file: its identity is its content's size and time
        stat = Path(model_key[5:]).stat()
        model_key += f":{stat.st_size}:{stat.st_mtime_ns}"
    return content_key({
        "model": model_key, "dataset": plain(cfg.dataset), "dataset_code": target_fingerprint(cfg.dataset),
        "method": plain(cfg.method), "method_code": target_fingerprint(cfg.method),
        "eval": {k: cfg.eval[k] for k in ("n_samples", "batch_size", "target")}, "seed": cfg.seed,
        "device": device.type, "version": ATTRIBUTION_VERSION,
    })


def cached_attributions(cfg, parts: Components, model, model_key: str, inputs, targets, device, cache_dir: Path) -> torch.Tensor:
    """The explainer's maps for ``inputs``, computed batch by batch once and cached (jobs differing only in the metric share them)."""

    def compute() -> torch.Tensor:
        seed_everything(cfg.seed)
        batches = list(zip(inputs.split(cfg.eval.batch_size), targets.split(cfg.eval.batch_size)))
        return torch.cat([parts.explainer(model, x, t).detach() for x, t in progress.bar(batches, desc="attributions", unit="batch")])

    if not cfg.get("cache", {}).get("attributions", True):
        return compute()
    key = attribution_key(cfg, model_key, device)
    about = f"{type(parts.explainer).__name__} on model {model_key}, {len(inputs)} samples"
    maps, hit = cache.store(cache_dir, "attributions", cfg.get("cache")).fetch(
        key, lambda: compute().cpu(), load=lambda path: torch_load(path)["attributions"],
        save=lambda value, path: torch.save({"attributions": value}, path), about=about)
    mlflow.set_tag("harness.attribution_cache", "hit" if hit else "computed")
    return maps.to(device)


def log_results(cfg, run_id, summary, results, model_summary, timings, data, predicted, targets, attributions, dataset) -> None:
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
    tracking.log_batch(run_id, {k: v for k, v in values.items() if v == v})  # NaN headlines stay unlogged

    frame = pd.DataFrame({
        "index": range(len(data)), "label": data.labels.numpy(), "predicted": predicted.cpu().numpy(), "target": targets.cpu().numpy(),
    })
    if data.groups is not None:
        frame["group"] = data.groups.numpy()
    tracking.log_text_frame(tracking.scores_table(results, frame), "scores.csv")
    for name, result in results.items():
        if result.curves is not None and result.curve_x is not None:
            tracking.log_text_frame(tracking.curve_table(result), f"curves/{name}.csv")
            tracking.log_curve(run_id, name, result.curves.mean(0))
            mlflow.log_figure(figures.curves(name, result), f"curves/{name}.png")
    shown = min(int(cfg.tracking.heatmaps), len(data))
    if shown > 0:
        titles = [f"{dataset.class_names[int(c)]}" if hasattr(dataset, "class_names") else str(int(c)) for c in targets[:shown]]
        fig = figures.heatmaps(dataset.denormalise(data.images[:shown]), attributions[:shown].cpu(),
                               None if data.masks is None else data.masks[:shown], titles)
        mlflow.log_figure(fig, "heatmaps.png")
    figures.plt.close("all")
