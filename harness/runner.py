"""One benchmark run: build everything from the config, explain, score, log.

The runner is deliberately thin. :func:`prepare` builds and validates every
component (cheap, no data generated; run settings are checked by
:mod:`harness.preflight.settings`), so a bad value fails in one line before any
work; :func:`run` opens the MLflow run and :func:`execute` gets the trained model (cache or
training), then streams the evaluation in batches of ``eval.batch_size`` (made, explained,
scored by every metric, per-sample scores appended, dropped; ``eval.shards``/``eval.shard``
score one of K disjoint parts), and hands the results to MLflow. A run that raises is logged as FAILED with its
traceback as ``error.txt``; it never looks finished. Ctrl-C (SIGINT) and SIGTERM (what
``timeout``, Slurm and Kubernetes send) both mark it KILLED (:class:`Terminated`). Before
a run starts, RUNNING runs of its experiment whose process on this host is gone (killed
with SIGKILL, a crashed machine) are marked KILLED
(:func:`harness.sweeps.resume.close_stale_runs`).

Warnings: every ``warnings.warn`` raised while a run executes (by a method, a metric,
a library, or the runner itself) is recorded, printed once per distinct message as one
line (``warning: ...``), and stored in the run's tag ``harness.warnings`` (one line
each), so a table built from the runs can flag them. The runner itself warns when the
model is at chance accuracy, a metric is NaN for every sample, or the explainer
returned a constant map for every sample (:func:`suspicious`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
import torch
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict

from harness import progress, reports, tracking
from harness.build import build
from harness.cache import SplitSource, cached_attribution_batch, config_hash, content_key, mark_attributions_cached, store
from harness.datasets import Dataset, FitsNormalisation, ImageSplit, ReadsFiles, evaluation_indices, prefetched
from harness.models import build_network
from harness.preflight.settings import check_against_dataset, check_needs, check_run_settings, resolve_device, unmet_needs
from harness.seeding import seed_everything
from harness.sweeps import resume
from harness.tracking import manifest
from harness.training import Retrainer, check_training, trained_model
from methods import Explainer, HasTargetLayer, UsesTrainingImages
from metrics import ROAR, Metric, MetricResult
from metrics.result import concatenate

log = logging.getLogger(__name__)


class Terminated(KeyboardInterrupt):
    """SIGTERM received during a run: handled like Ctrl-C (the run is marked KILLED, the process stops)."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While active (main thread only), SIGTERM raises :class:`Terminated` instead of ending the process unrecorded."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(f"received signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


WARNINGS_TAG = "harness.warnings"
TAG_LIMIT = 5000  # characters of a tag value MLflow stores safely


NEAR_CHANCE = 0.05  # test accuracy within 5 points of chance (or two standard errors of guessing, if more) is "near chance"


class RunWarning(UserWarning):
    """A run that finished but whose numbers are suspect (chance accuracy, all-NaN metric, constant maps)."""


@contextlib.contextmanager
def recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record every warning raised inside (filters already set, e.g. to ignore, still apply; nothing is deduplicated away)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", append=True)  # after the existing filters: their ignores still win
        yield caught


def warning_lines(caught: list[warnings.WarningMessage]) -> list[str]:
    """One line per distinct warning: the message, its category and where it came from, and a count if repeated."""
    counts: dict[str, int] = {}
    for item in caught:
        origin = Path(item.filename).stem
        line = f"{' '.join(str(item.message).split())} [{item.category.__name__}, {origin}]"
        counts[line] = counts.get(line, 0) + 1
    return [line if n == 1 else f"{line} (x{n})" for line, n in counts.items()]


def report_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """Print each distinct warning in one line and store them in the active run's tag ``harness.warnings``."""
    lines = warning_lines(caught)
    for line in lines:
        print(f"warning: {line}", file=sys.stderr, flush=True)
    if lines:
        text = "\n".join(lines)
        mlflow.set_tag(WARNINGS_TAG, text if len(text) <= TAG_LIMIT else text[:TAG_LIMIT - 20] + "\n... (truncated)")
    return lines


def suspicious(model_summary: dict[str, float], num_classes: int, n_test: int, attributions: torch.Tensor,
               results: dict[str, MetricResult]) -> None:
    """Warn (:class:`RunWarning`) about results that are numbers but mean nothing."""
    accuracy = model_summary.get("test_accuracy")
    chance = 1.0 / max(num_classes, 1)
    margin = 2 * (chance * (1 - chance) / max(n_test, 1)) ** 0.5  # two standard errors of a guessing classifier
    if accuracy is not None and accuracy <= chance + max(margin, NEAR_CHANCE):
        warnings.warn(f"the model is at or near chance accuracy ({accuracy:.3f}; chance {chance:.3f} for {num_classes} classes): "
                      "its explanations and their scores say nothing about the method", RunWarning, stacklevel=2)
    flat = attributions.flatten(1)
    if len(flat) and bool((flat.amax(1) == flat.amin(1)).all()):
        warnings.warn(f"the explainer returned a constant map for every one of the {len(flat)} samples: "
                      "every metric scores a map that ranks nothing", RunWarning, stacklevel=2)
    for name, result in results.items():
        if result.scores.numel() and bool(torch.isnan(result.scores).all()):
            warnings.warn(f"metric {name} is NaN for every sample: it is undefined here (see the per-sample reasons)", RunWarning, stacklevel=2)


@dataclass
class Components:
    """A job's built components (cheap: nothing generated or trained yet) and its tracking URI."""

    dataset: Dataset
    explainer: Explainer
    metrics: dict[str, Metric]
    uri: str
    notices: list[str] = field(default_factory=list)   # one line each, e.g. default metrics left out


@dataclass
class Outcome:
    """What a finished run hands back: its MLflow run, the summary table and the per-sample results."""

    run_id: str
    summary: pd.DataFrame
    results: dict[str, MetricResult]
    model_summary: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)

    def headline(self) -> dict[str, float]:
        return dict(zip(self.summary["metric"], self.summary["value"]))


def metrics_chosen(overrides: list[str]) -> bool:
    """Whether the command line chooses the metrics (``metric=[...]`` or an ``experiment``) rather than taking config.yaml's."""
    keys = [o.lstrip("+~").split("=", 1)[0] for o in overrides]
    return any(k in ("metric", "experiment") or k.startswith("metric/") for k in keys)


def fitting_default_metrics(cfg: DictConfig, metrics: dict[str, Metric], dataset: Dataset) -> list[str]:
    """Leave out of the default metric selection (in ``metrics`` and ``cfg.metric``) those whose needs the dataset lacks; the notice."""
    unmet = {name: unmet_needs(metric, dataset) for name, metric in metrics.items()}
    dropped = [name for name, lacking in unmet.items() if lacking]
    if not dropped or len(dropped) == len(metrics):
        return []  # nothing to leave out, or nothing would be left: check_needs says why in one line
    with open_dict(cfg):
        for name in dropped:
            metrics.pop(name)
            cfg.metric.pop(name)
    reasons = ", ".join(f"{name} (needs {unmet[name]})" for name in dropped)
    return [f"notice: dataset {type(dataset).__name__} lacks what some default metrics need; left out {reasons}; "
            f"running metric=[{','.join(metrics)}]"]


def prepare(cfg: DictConfig, checked_uris: set[str] | None = None, overrides: list[str] | None = None) -> Components:
    """Build and validate every component and the tracking store; generates and trains nothing.

    ``checked_uris`` remembers stores already checked (a sweep checks each store once). With the
    command line's ``overrides`` given and no metric chosen there (:func:`metrics_chosen`), default
    metrics the dataset cannot serve (e.g. mask-based ones on a folder without masks) are left out
    of ``cfg`` with a notice (``Components.notices``); a chosen one stops the command in one line.
    """
    check_run_settings(cfg)
    dataset = build(cfg.dataset, "dataset", seed=cfg.seed, contract=Dataset)
    explainer = build(cfg.method, "method", seed=cfg.seed, contract=Explainer)
    metrics = {name: build(node, f"metric.{name}", seed=cfg.seed, contract=Metric) for name, node in cfg.metric.items()}
    notices = [] if overrides is None or metrics_chosen(overrides) else fitting_default_metrics(cfg, metrics, dataset)
    check_needs(metrics, dataset)
    check_against_dataset(cfg, dataset)
    check_training(cfg.model, dataset.split_size("train"))
    build_network(cfg.model, dataset)
    uri = tracking.tracking_uri(cfg)
    if checked_uris is None or uri not in checked_uris:
        tracking.check_tracking(uri)
        if checked_uris is not None:
            checked_uris.add(uri)
    return Components(dataset, explainer, metrics, uri, notices)


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
    """Prepare, open the job's MLflow run (a child of the sweep's parent, if any), execute; FAILED with ``error.txt`` on errors."""
    identity = config_hash(cfg)  # of the config as composed, before prepare leaves out default metrics: what a resumed sweep compares
    parts = prepare(cfg, overrides=overrides)
    device = resolve_device(str(cfg.device))
    names = choice_names(cfg, choices)
    mlflow.set_tracking_uri(parts.uri)
    experiment = tracking.experiment_id(parts.uri, cfg.tracking.experiment, tracking.artifact_root(cfg, parts.uri))
    tags = {
        "harness.config_hash": identity,
        "harness.method": names["method"],
        "harness.model": names["model"],
        "harness.dataset": names["dataset"],
        "harness.metrics": names["metric"],
        "harness.overrides": " ".join(overrides or []),
        "harness.job": job,
        resume.PROCESS_TAG: resume.process_token(),
    }
    run_name = cfg.tracking.run_name or f"{names['method']}-{names['dataset']}"
    resume.close_stale_runs(MlflowClient(parts.uri), experiment)
    with terminate_as_interrupt(), mlflow.start_run(experiment_id=experiment, run_name=run_name,
                          parent_run_id=os.environ.get(tracking.PARENT_RUN_ENV), tags=tags) as active:
        run_id = active.info.run_id
        if parts.notices:
            mlflow.set_tag("harness.notices", " | ".join(parts.notices))
        mlflow.log_params(tracking.flat_params(cfg) | tracking.choice_params(names))
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        env = manifest.manifest(device, cfg)  # completed with the weights' and data's hashes once they are known (execute)
        mlflow.log_dict(env, manifest.ARTIFACT)
        mlflow.set_tags(manifest.tags(env))
        with recorded_warnings() as caught:
            try:
                outcome = execute(cfg, parts, device, run_id, env)
            except BaseException as error:
                mlflow.log_text(traceback.format_exc(), "error.txt")
                report_warnings(caught)
                if isinstance(error, KeyboardInterrupt):
                    mlflow.end_run("KILLED")  # Ctrl-C or SIGTERM: interrupted, not a bug in the job
                raise
            report_warnings(caught)
    return outcome


def fit_normalisation(cfg: DictConfig, dataset: Dataset, cache_dir: Path) -> None:
    """Give a dataset that computes its ``mean``/``std`` (``FitsNormalisation``) the cached values, computing them once."""
    if not isinstance(dataset, FitsNormalisation) or not dataset.normalisation_pending():
        return
    identity = dataset.normalisation_identity()
    compute = lambda: dict(zip(("mean", "std"), dataset.compute_normalisation()))  # noqa: E731
    stats, hit = (compute(), False) if not cfg.get("cache", {}).get("datasets", True) else store(cache_dir, "datasets", cfg.get("cache")).fetch(
        content_key(identity), compute,
        about=f"{type(dataset).__name__} normalisation from {len(identity['normalisation'])} training images")
    dataset.set_normalisation(stats["mean"], stats["std"])
    text = f"mean {[round(v, 4) for v in stats['mean'].tolist()]}, std {[round(v, 4) for v in stats['std'].tolist()]}"
    log.info("normalisation %s (%s from %d training images)", text, "cached" if hit else "computed", len(identity["normalisation"]))
    mlflow.set_tag("harness.normalisation", f"{text}, computed from the training images")


def shard_indices(picked: torch.Tensor, shards: int = 1, shard: int = 0) -> torch.Tensor:
    """Shard ``shard`` of ``shards`` of the evaluation indices: every ``shards``-th one from position ``shard``.

    The K shards are disjoint, their union is ``picked`` (the seeded, stratified draw), and each
    keeps the class balance of the draw; metrics seed their draws per sample id, so the shards'
    per-sample scores together equal the unsharded run's (``harness report`` merges them).
    """
    if not 0 <= shard < shards:
        raise ValueError(f"eval.shard must be in [0, eval.shards={shards}); got {shard}")
    return picked[shard::shards]


SHARD_TAG = "harness.shard"             # "i/K" on a run of one shard of an evaluation
SHARD_GROUP_TAG = "harness.shard_of"    # the config hash the K shards share (their own with eval.shard=0)
PARTIAL_SCORES = "partial/scores.csv"   # per-sample scores so far, while a run streams (the final ones are scores.csv)
TRAINING_SPLIT_TAG = "harness.training_split"  # "read whole" (training, ROAR, a non-streaming dataset's summary) or "not read"
PROGRESS_TAG = "harness.progress"       # "k/N samples scored" while streaming, "complete: N/N samples" at the end
FLUSH_EVERY_S = 60.0                    # longest time between two uploads of the partial scores


def attribution_cache_tag(batches_reused: int, partly: int, batches: int, samples_reused: int, samples: int) -> str:
    """``hit`` (every map from the cache), ``computed`` (none), else how many batches (and samples) were reused."""
    if samples_reused == samples:
        return "hit"
    if samples_reused == 0:
        return "computed"
    text = f"{batches_reused} of {batches} batches reused"
    return text if not partly else f"{text}, {samples_reused} of {samples} samples"


class PartialScores:
    """Per-sample rows appended batch by batch to a local CSV, uploaded to the run every ``FLUSH_EVERY_S`` and when a run stops."""

    def __init__(self, folder: Path, total: int) -> None:
        self.path, self.total, self.done, self.last = folder / "scores.csv", total, 0, time.monotonic()

    def append(self, frame: pd.DataFrame) -> None:
        frame.to_csv(self.path, mode="a", header=self.done == 0, index=False)
        self.done += len(frame)
        if time.monotonic() - self.last >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Upload what was scored so far and say how far the run got (tag ``harness.progress``)."""
        self.last = time.monotonic()
        if self.done:
            mlflow.log_artifact(str(self.path), Path(PARTIAL_SCORES).parent.as_posix())
        mlflow.set_tag(PROGRESS_TAG, f"{self.done}/{self.total} samples scored")


def execute(cfg: DictConfig, parts: Components, device: torch.device, run_id: str, env: dict | None = None) -> Outcome:
    """Data, model, then the evaluation streamed batch by batch, the summary, and everything logged to the open run.

    The training split is made or loaded only if training, ROAR or a training-image pool that cannot be made by
    index needs it (:class:`harness.cache.SplitSource`; tag ``harness.training_split``). Each batch of
    ``eval.batch_size`` evaluation samples is loaded (``eval.num_workers`` worker processes
    ahead, in the seeded order: :func:`harness.datasets.prefetched`), explained (attributions cached per
    batch), scored by every metric and its per-sample scores appended to ``partial/scores.csv``
    (uploaded at least every minute and when the run stops, tag ``harness.progress``), then dropped:
    only the per-sample scores, and the first ``tracking.heatmaps`` images and maps for the figures,
    are kept. Bootstrap intervals and ranks are computed from the concatenated per-sample scores.
    """
    timings: dict[str, float] = {}
    seed_everything(cfg.seed)
    cache_dir = Path(str(cfg.paths.cache)).expanduser().resolve()
    start = time.perf_counter()
    fit_normalisation(cfg, parts.dataset, cache_dir)
    # the training split is made or loaded only if something needs it whole: training, ROAR, a training-image pool
    train_split = SplitSource(cfg, parts.dataset, "train", cache_dir)
    # a dataset that makes samples by index is streamed (images made per batch); any other test split is read whole
    test_split = SplitSource(cfg, parts.dataset, "test", cache_dir).streamed()
    timings["time_data_s"] = time.perf_counter() - start

    start = time.perf_counter()
    trained = trained_model(cfg.model, cfg.dataset, parts.dataset, train_split, test_split, cfg.seed, cache_dir, device, cfg.get("cache"))
    timings["time_model_s"] = time.perf_counter() - start
    log.info("model %s (%s) test accuracy %.3f", trained.key, trained.source, trained.summary.get("test_accuracy", float("nan")))
    mlflow.set_tags({"harness.model_cache": "hit" if trained.source == "cached" else "trained" if trained.source == "trained" else "not used",
                     "harness.model_source": trained.source, "harness.model_key": trained.key})  # the report's prototypes find the weights by it
    model = trained.model.eval()
    # ROAR retrains on modified training images (metrics.types.Retrain); without it the training split is dropped here
    retrain = (Retrainer(cfg, parts.dataset, train_split, trained.key, cache_dir, device)
               if any(isinstance(metric, ROAR) for metric in parts.metrics.values()) else None)
    if isinstance(parts.explainer, UsesTrainingImages):  # e.g. expected_gradients.background=train: only the images it names are kept
        wanted = parts.explainer.training_indices(len(train_split))
        if wanted is not None:
            parts.explainer.use_training_images(train_split.select(wanted).images.to(device))
    if retrain is None:
        train_split.drop()  # training is over: the split is not held through the evaluation

    drawn = evaluation_indices(test_split.labels, cfg.eval.n_samples, cfg.seed, str(cfg.eval.get("sample", "stratified")))
    shards, shard = int(cfg.eval.get("shards", 1)), int(cfg.eval.get("shard", 0))
    picked = shard_indices(drawn, shards, shard)
    mlflow.log_text(json.dumps(picked.tolist()), "eval_indices.json")
    # the evaluation inputs' hash for the manifest, fed the batches as they are evaluated (a file dataset: its identity)
    digest = None if env is None or isinstance(type(parts.dataset), ReadsFiles) else manifest.InputsDigest()
    covered = int(torch.as_tensor(test_split.labels)[drawn].unique().numel())
    if covered < min(parts.dataset.num_classes, len(drawn)):  # e.g. eval.sample=first on a folder sorted by class
        warnings.warn(f"the {len(drawn)} evaluation samples cover {covered} of {parts.dataset.num_classes} classes "
                      f"(eval.sample={cfg.eval.get('sample', 'stratified')}); eval.sample=stratified draws every class", RunWarning, stacklevel=2)
    if shards > 1:
        whole = cfg.copy()
        with open_dict(whole):
            whole.eval.shard = 0
        mlflow.set_tags({SHARD_TAG: f"{shard}/{shards}", SHARD_GROUP_TAG: config_hash(whole)})  # what harness report merges
    shown = min(int(cfg.tracking.heatmaps), len(picked))
    mean, std = parts.dataset.mean.to(device), parts.dataset.std.to(device)
    per_batch: dict[str, list[MetricResult]] = {name: [] for name in parts.metrics}
    kept: dict[str, list[torch.Tensor]] = {key: [] for key in ("labels", "groups", "predicted", "targets", "range")}
    first: dict[str, list[torch.Tensor]] = {}
    hits, partly, samples_reused, n_first = 0, 0, 0, 0
    timings["time_attribution_s"] = 0.0
    timings |= {f"time_{name}_s": 0.0 for name in parts.metrics}
    batches = picked.split(int(cfg.eval.batch_size))
    with tempfile.TemporaryDirectory() as folder:
        partial = PartialScores(Path(folder), len(picked))
        try:
            loading = prefetched(test_split, batches, int(cfg.eval.get("num_workers", 0)), cfg.seed)  # in the seeded order
            for number, (idx, data) in enumerate(progress.bar(loading, desc="evaluation", total=len(batches), unit="batch")):
                if digest is not None:
                    digest.update(data)
                inputs, labels = data.images.to(device), data.labels.to(device)
                masks = None if data.masks is None else data.masks.to(device)
                with torch.no_grad():
                    predicted = model(inputs).argmax(1)
                targets = predicted if cfg.eval.target == "predicted" else labels
                if number == 0 and isinstance(parts.explainer, HasTargetLayer):  # the layer a CAM-family method actually read (issue 13)
                    mlflow.log_param("method_layer", parts.explainer.chosen_layer(model, inputs[:1]))
                start = time.perf_counter()
                attributions, reused = cached_attribution_batch(cfg, parts.explainer, model, trained.key, inputs, targets, idx, device, cache_dir)
                timings["time_attribution_s"] += time.perf_counter() - start
                hits, samples_reused = hits + (reused == len(idx)), samples_reused + reused
                partly += 0 < reused < len(idx)
                context = {
                    "labels": labels, "masks": masks, "groups": None if data.groups is None else data.groups.to(device),
                    "explainer": parts.explainer, "mean": mean, "std": std,
                    "dataset": parts.dataset, "indices": idx.to(device), "progress": progress.counter,
                } | ({} if retrain is None else {"retrain": retrain})
                batch_results: dict[str, MetricResult] = {}
                for name, metric in parts.metrics.items():
                    seed_everything(cfg.seed)
                    start = time.perf_counter()
                    batch_results[name] = metric(model, inputs, targets, attributions, **context)
                    timings[f"time_{name}_s"] += time.perf_counter() - start
                    per_batch[name].append(batch_results[name])
                flat = attributions.detach().flatten(1)
                kept["range"].append(torch.stack([flat.amax(1), flat.amin(1)], 1).cpu())
                kept["labels"].append(data.labels)
                kept["predicted"].append(predicted.cpu())
                kept["targets"].append(targets.cpu())
                if data.groups is not None:
                    kept["groups"].append(data.groups)
                if n_first < shown:  # the first samples' images and maps, for the heat-map figure
                    for key, value in (("images", data.images), ("masks", data.masks), ("maps", attributions)):
                        if value is not None:
                            first.setdefault(key, []).append(value[:shown - n_first].cpu())
                    n_first += min(len(idx), shown - n_first)
                frame = pd.DataFrame({"index": idx.numpy(), "label": data.labels.numpy(), "predicted": predicted.cpu().numpy(),
                                      "target": targets.cpu().numpy()} | ({} if data.groups is None else {"group": data.groups.numpy()}))
                partial.append(tracking.scores_table(batch_results, frame))
                del data, inputs, attributions, batch_results, context
        except BaseException:
            with contextlib.suppress(Exception):  # the original error, not an upload's, is what the run reports
                partial.flush()  # a run stopped half-way keeps what it scored (it is marked FAILED or KILLED, never FINISHED)
            raise
        partial.flush()
    mark_attributions_cached(cfg, trained.key, device, cache_dir, len(batches))  # what the sweep's cost estimate looks up
    mlflow.set_tag("harness.attribution_cache", attribution_cache_tag(hits, partly, len(batches), samples_reused, len(picked)))
    mlflow.set_tag(TRAINING_SPLIT_TAG, "read whole" if train_split.loaded else "not read")  # after ROAR, which reads it lazily

    if env is not None:  # the run's manifest with the hashes of the weights and the evaluated data
        env = manifest.with_hashes(env, model, *((digest.hexdigest(), "evaluation inputs") if digest is not None
                                                 else (manifest.files_hash(cfg.dataset, picked), "dataset identity")))
        mlflow.log_dict(env, manifest.ARTIFACT)
        mlflow.set_tags(manifest.tags(env))
    results = {name: concatenate(parts_) for name, parts_ in per_batch.items()}
    suspicious(trained.summary, parts.dataset.num_classes, len(test_split.labels), torch.cat(kept["range"]), results)
    summary = reports.summary(results, seed=cfg.seed)
    logged = ImageSplit(  # the figures' samples' images and masks; every sample's labels and groups
        torch.cat(first["images"]) if first.get("images") else torch.empty(0), torch.cat(kept["labels"]),
        torch.cat(first["masks"]) if first.get("masks") else None, torch.cat(kept["groups"]) if kept["groups"] else None)
    maps = torch.cat(first["maps"]) if first.get("maps") else torch.empty(0)
    tracking.log_results(cfg, run_id, summary, results, trained.summary, timings, logged, torch.cat(kept["predicted"]),
                         torch.cat(kept["targets"]), maps, parts.dataset, indices=picked)
    mlflow.set_tag(PROGRESS_TAG, f"complete: {len(picked)}/{len(picked)} samples scored")
    return Outcome(run_id, summary, results, trained.summary, timings)
