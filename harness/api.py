"""The harness from Python: :func:`evaluate` in-memory data with any model, :func:`run` exactly what the command line runs.

``evaluate(model, inputs, ...)`` explains the inputs with each method (by config name, by
name with overrides, or as an object), computes each method's attributions once, scores
them with every metric and returns one tidy row per (method, metric, sample). Names are
composed from ``conf/`` with Hydra's compose API and built by :func:`harness.build.build`,
exactly as the command line does, so ``methods=["integrated_gradients"]`` here and
``method=integrated_gradients`` there compute the same thing. Seeding follows the runner:
the seed is set before each method's attributions and before each metric.

``run(["method=integrated_gradients", "metric=[deletion]"])`` is ``harness
method=integrated_gradients metric=[deletion]`` from Python: the same pre-flight checks,
composition, run and MLflow logging; it returns the summary table and the run id.
"""
from __future__ import annotations

import copy
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from harness import progress, reports
from harness.build import ConfigError, build, missing_members
from harness.datasets import ImageDataset, ImageSplit
from harness.preflight.settings import resolve_device, unmet_needs
from harness.seeding import seed_everything
from methods import Explainer, explain_samples
from metrics import ROAR, Metric, MetricResult
from metrics.result import concatenate

MethodSpec = str | Explainer | Iterable[str | Explainer] | Mapping[str, Mapping[str, Any] | Explainer | None]
MetricSpec = str | Metric | Iterable[str | Metric] | Mapping[str, Mapping[str, Any] | Metric | None]
Inputs = torch.Tensor | TorchDataset | DataLoader


@dataclass
class RunResult:
    """What :func:`run` hands back: the summary table (one row per metric), the MLflow run id, and the runner's outcome."""

    summary: pd.DataFrame
    run_id: str
    outcome: Any  # harness.runner.Outcome: per-sample results, model summary, timings


def compose_config(overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    """The config ``harness <overrides>`` composes (Hydra's compose API over ``pkg://conf``); one-line errors."""
    from harness.preflight.command_line import explain as explain_error

    initialised = GlobalHydra.instance().is_initialized()
    if not initialised:
        initialize_config_module("conf", version_base="1.3")
    try:
        return compose("config", overrides=list(overrides), return_hydra_config=return_hydra_config)
    except (MissingConfigException, ConfigCompositionException, OmegaConfBaseException) as error:
        raise ConfigError(explain_error(error, list(overrides))) from None
    finally:
        if not initialised:
            GlobalHydra.instance().clear()


def _named(spec: Any, kind: str, contract: type) -> dict[str, Any]:
    """``{name: str (a config name) | dict of overrides | object}`` from any accepted form of ``methods=``/``metrics=``."""
    if isinstance(spec, str) or missing_members(spec, contract) == []:
        spec = [spec]
    if isinstance(spec, Mapping):
        items = {str(name): ({} if value is None else value) for name, value in spec.items()}
    else:
        items = {}
        for entry in spec:
            name = entry if isinstance(entry, str) else type(entry).__name__
            if name in items:
                raise ConfigError(f"{kind}s: {name!r} is given twice; pass a dict {{name: object}} to name them apart")
            items[name] = {} if isinstance(entry, str) else entry
    if not items:
        raise ConfigError(f"{kind}s selects nothing; give at least one, e.g. {kind}s=['saliency']" if kind == "method"
                          else f"{kind}s selects nothing; give at least one, e.g. {kind}s=['deletion', 'insertion']")
    return items


def _with_overrides(node: DictConfig, overrides: Mapping[str, Any], where: str) -> DictConfig:
    node = node.copy()
    OmegaConf.set_struct(node, True)
    for key, value in overrides.items():
        if OmegaConf.select(node, str(key), default="__absent__") == "__absent__":
            keys = ", ".join(k for k in node.keys() if k != "_target_")
            raise ConfigError(f"unknown key '{key}' for {where}: it has {keys}")
        OmegaConf.update(node, str(key), value, merge=True)
    return node


def build_components(methods: MethodSpec, metrics: MetricSpec, seed: int = 0,
                     metrics_needed: bool = True) -> tuple[dict[str, Explainer], dict[str, Metric], DictConfig]:
    """The explainers and metrics ``methods``/``metrics`` name, built as the command line builds them, and their config nodes.

    Returns ``(explainers, metrics, config)``: ``config.method.<name>`` and ``config.metric.<name>``
    hold the composed node of every component given by name (objects have none).
    """
    wanted_methods = _named(methods, "method", Explainer)
    wanted_metrics = _named(metrics, "metric", Metric) if metrics_needed else {}
    names = [n for n, v in wanted_metrics.items() if isinstance(v, Mapping)]
    method_names = [n for n, v in wanted_methods.items() if isinstance(v, Mapping)]
    # One composition for everything: each method option is added at its own package (+method@api_methods.NAME=NAME).
    base = compose_config([f"metric=[{','.join(names)}]", *(f"+method@api_methods.{n}={n}" for n in method_names)])
    nodes = OmegaConf.create({"method": {}, "metric": {}, "seed": seed, "tracking": OmegaConf.to_container(base.tracking),
                              "paths": OmegaConf.to_container(base.paths, resolve=True)})
    explainers: dict[str, Explainer] = {}
    for name, value in wanted_methods.items():
        if isinstance(value, Mapping):
            node = _with_overrides(base.api_methods[name], value, f"method {name}")
            nodes.method[name] = node
            explainers[name] = build(node, "method", seed=seed, contract=Explainer)
        else:
            lacking = missing_members(value, Explainer)
            if lacking:
                raise ConfigError(f"methods: {name} is neither a config name nor a methods.Explainer (it lacks {', '.join(lacking)})")
            explainers[name] = value
    built: dict[str, Metric] = {}
    for name, value in wanted_metrics.items():
        if isinstance(value, Mapping):
            node = _with_overrides(base.metric[name], value, f"metric {name}")
            nodes.metric[name] = node
            built[name] = build(node, f"metric.{name}", seed=seed, contract=Metric)
        else:
            lacking = missing_members(value, Metric)
            if lacking:
                raise ConfigError(f"metrics: {name} is neither a config name nor a metrics.Metric (it lacks {', '.join(lacking)})")
            built[name] = value
    return explainers, built, nodes


class InMemory(ImageDataset):
    """The evaluated tensors as a :class:`harness.datasets.Dataset` (for the metrics' context and the logged figures)."""

    def __init__(self, data: ImageSplit, mean: torch.Tensor, std: torch.Tensor, class_names: list[str]) -> None:
        self.data, self.mean, self.std = data, mean, std
        self.num_classes, self.channels, self.image_size = len(class_names), data.images.shape[1], data.images.shape[-1]
        self.class_names, self.has_masks = class_names, data.masks is not None
        self.n = {"train": 0, "test": len(data)}

    def set_classes(self, class_names: list[str], n_test: int) -> None:
        """The class names and the number of samples, known once the streamed inputs have all been read."""
        self.class_names, self.num_classes, self.n = class_names, len(class_names), {"train": 0, "test": n_test}

    def split(self, name: str, variant: str = "original") -> ImageSplit:
        self.check_split(name, variant)
        return self.data


def _rows(value: Any, n: int, what: str, shape: str) -> torch.Tensor | None:
    """``value`` as a tensor with ``n`` rows (None stays None); one line if it has another number."""
    if value is None:
        return None
    value = torch.as_tensor(value)
    if value.dim() == 0 or value.shape[0] != n:
        raise ConfigError(f"{what} must hold one entry per input ({n}): {shape}; got shape {tuple(value.shape)}")
    return value


def _batches(inputs: Inputs, labels: Any, masks: Any, targets: Any, indices: Any, attributions: Mapping[str, torch.Tensor] | None,
             explainers: Mapping[str, Explainer], batch_size: int) -> Iterator[tuple]:
    """``(images, labels, masks, targets, ids, {method: given maps})`` batch by batch, checked as they come.

    A tensor is cut into batches of ``batch_size`` (every argument checked against its N at the first batch, before
    any work); a ``DataLoader`` is read batch by batch as it yields them (a ``Dataset``: in batches of ``batch_size``),
    so its images are never all in memory; ``labels``/``masks``/``targets``/``indices``/``attributions`` given as
    tensors are cut alike, and a dataset's own labels and masks (items ``(image, label[, mask])``) are used otherwise.
    """
    given = dict(attributions or {})
    for name in given:
        if name not in explainers:
            raise ConfigError(f"attributions: {name!r} is not one of the methods ({', '.join(explainers)})")
    per_input = targets if isinstance(targets, torch.Tensor) and targets.dim() > 0 else None
    if isinstance(inputs, torch.Tensor):
        if inputs.dim() != 4:
            raise ConfigError(f"inputs must be images of shape (N, C, H, W); got shape {tuple(inputs.shape)}")
        n, h, w = inputs.shape[0], inputs.shape[2], inputs.shape[3]
        labels = _rows(labels, n, "labels", f"({n},)")
        masks = _rows(masks, n, "masks", f"({n}, 1, {h}, {w})")
        if masks is not None and tuple(masks.shape[1:]) != (1, h, w):
            raise ConfigError(f"masks must have shape ({n}, 1, {h}, {w}); got {tuple(masks.shape)}")
        if per_input is not None and tuple(per_input.shape) != (n,):
            raise ConfigError(f"targets must hold one class per input ({n}); got shape {tuple(per_input.shape)}")
        ids = torch.arange(n) if indices is None else torch.as_tensor(indices, dtype=torch.long).flatten()
        if ids.shape != (n,):
            raise ConfigError(f"indices must hold one id per input ({n}); got shape {tuple(ids.shape)}")
        for name, maps in given.items():
            _rows(maps, n, f"attributions[{name!r}]", f"({n}, C|1, {h}, {w})")
        batches: Iterator[tuple] = ((inputs[k:k + batch_size], None, None) for k in range(0, n, batch_size))
    elif isinstance(inputs, (DataLoader, TorchDataset)):
        loader = inputs if isinstance(inputs, DataLoader) else DataLoader(inputs, batch_size=batch_size)
        ids = None if indices is None else torch.as_tensor(indices, dtype=torch.long).flatten()
        batches = (_items(batch) for batch in loader)
    else:
        raise ConfigError(f"inputs must be a tensor (N, C, H, W), a torch Dataset or a DataLoader; got {type(inputs).__name__}")
    start = 0
    for images, own_labels, own_masks in batches:
        if images.dim() != 4:
            raise ConfigError(f"inputs must be images of shape (N, C, H, W); got a batch of shape {tuple(images.shape)}")
        stop = start + len(images)
        cut = lambda t: None if t is None else t[start:stop]  # noqa: E731
        batch_ids = torch.arange(start, stop) if ids is None else ids[start:stop]
        if len(batch_ids) != len(images) or (per_input is not None and len(per_input[start:stop]) != len(images)):
            raise ConfigError(f"indices and targets must hold one entry per input; they end before input {stop}")
        batch_labels = cut(labels) if labels is not None else own_labels
        batch_masks = cut(masks) if masks is not None else own_masks
        yield (images, None if batch_labels is None else torch.as_tensor(batch_labels, dtype=torch.long), batch_masks,
               targets if per_input is None else per_input[start:stop], batch_ids, {k: v[start:stop] for k, v in given.items()})
        start = stop
    if start == 0:
        raise ConfigError("inputs: the dataset is empty")


def _items(batch: Any) -> tuple[torch.Tensor, Any, Any]:
    """A DataLoader batch of ``image``, ``(image, label)`` or ``(image, label, mask)`` as (images, labels or None, masks or None)."""
    if isinstance(batch, Mapping):
        raise ConfigError(f"inputs: dataset items must be image, (image, label) or (image, label, mask); got a dict with keys {', '.join(map(str, batch))}")
    parts = [batch] if isinstance(batch, torch.Tensor) else list(batch)[:3]
    parts = [torch.as_tensor(p) for p in parts] + [None] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


def _targets(model: nn.Module, images: torch.Tensor, targets: Any, labels: torch.Tensor | None, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        predicted = torch.cat([model(x).argmax(1) for x in images.split(batch_size)])
    if targets is None or (isinstance(targets, str) and targets == "predicted"):
        return predicted, predicted
    if isinstance(targets, str) and targets == "label":
        if labels is None:
            raise ConfigError("targets='label' needs labels; pass labels=... or a dataset of (image, label) pairs")
        return labels, predicted
    if isinstance(targets, str):
        raise ConfigError(f"targets must be None/'predicted', 'label', an int or a tensor of class indices; got {targets!r}")
    chosen = torch.as_tensor(targets, dtype=torch.long, device=images.device)
    chosen = chosen.expand(len(images)) if chosen.dim() == 0 else chosen
    if chosen.shape != (len(images),):
        raise ConfigError(f"targets must hold one class per input ({len(images)}); got shape {tuple(chosen.shape)}")
    return chosen, predicted


def explain(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | int | str | None = None, *, methods: MethodSpec = ("saliency",),
            seed: int = 0, batch_size: int = 64, device: str | torch.device = "auto") -> dict[str, torch.Tensor]:
    """Each method's attributions ``{name: (N, C|1, H, W)}`` on ``device``, to look at or to pass to :func:`evaluate`.

    ``methods`` and ``targets`` take the forms :func:`evaluate` takes; each method's maps are
    computed once, batch by batch, after seeding with ``seed`` (as the runner does).
    """
    run_device = resolve_device(str(device))
    explainers, _, _ = build_components(methods, {}, seed, metrics_needed=False)
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
        raise ConfigError(f"inputs must be a tensor of images (N, C, H, W); got {type(inputs).__name__}")
    model = model.to(run_device).eval()
    images = inputs.to(run_device)
    chosen, _ = _targets(model, images, targets, None, batch_size)
    return _explain(model, images, chosen, explainers, seed=seed, batch_size=batch_size)


def _explain(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, explainers: Mapping[str, Explainer], *,
             seed: int = 0, batch_size: int = 64, ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Each explainer's attributions, computed once, batch by batch, seeded as the runner seeds them.

    ``ids`` (default 0..N-1: the inputs' positions) seed the per-sample draws of the stochastic explainers
    (:class:`methods.PerSampleSeeded`), so their maps do not depend on ``batch_size``.
    """
    maps = {}
    ids = torch.arange(len(inputs), device=inputs.device) if ids is None else ids.to(inputs.device)
    for name, explainer in explainers.items():
        seed_everything(seed)
        batches = list(zip(inputs.split(batch_size), targets.split(batch_size), ids.split(batch_size)))
        maps[name] = torch.cat([explain_samples(explainer, model, x, t, i).detach()
                                for x, t, i in progress.bar(batches, desc=f"{name} attributions", unit="batch")])
    return maps


def evaluate(
    model: nn.Module,
    inputs: Inputs,
    targets: torch.Tensor | int | str | None = None,
    *,
    methods: MethodSpec = ("saliency",),
    metrics: MetricSpec = ("deletion", "insertion"),
    masks: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    tracking: str | bool | None = None,
    mean: Iterable[float] | torch.Tensor | None = None,
    std: Iterable[float] | torch.Tensor | None = None,
    batch_size: int = 64,
    class_names: list[str] | None = None,
    attributions: Mapping[str, torch.Tensor] | None = None,
    indices: torch.Tensor | None = None,
    train: Inputs | tuple[torch.Tensor, torch.Tensor] | None = None,
    training: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Explain ``inputs`` with every method, score each method's attributions with every metric.

    Args:
        model (nn.Module): The classifier to explain; it is moved to ``device`` and put in eval mode.
        inputs (Tensor, Dataset or DataLoader): Images ``(N, C, H, W)`` as the model takes them
            (normalised with ``mean``/``std``), or a torch ``Dataset``/``DataLoader`` whose items are
            ``image``, ``(image, label)`` or ``(image, label, mask)``. Streamed: each batch (``batch_size`` images
            of a tensor or a Dataset, a DataLoader's own batches) is explained, scored and dropped, so only the
            per-sample results are kept (and the first ``tracking.heatmaps`` images when ``tracking`` is set).
        targets (Tensor, int, str or None, optional): The class explained per input: ``None`` or
            ``"predicted"`` (the model's argmax, the command line's ``eval.target=predicted``),
            ``"label"`` (the labels), an int for all inputs, or ``(N,)`` class indices. Default: None.
        methods (str, object, list or dict, optional): Config names (``"integrated_gradients"``),
            ``methods.Explainer`` objects, a list of either, or a dict ``{name: overrides}``
            (``{"integrated_gradients": {"n_steps": 100}}``) or ``{name: object}``. Default: ("saliency",).
        metrics (str, object, list or dict, optional): The same forms for metrics
            (``{"deletion": {"steps": 10}}``). Default: ("deletion", "insertion").
        masks (Tensor or None, optional): ``(N, 1, H, W)`` boolean foreground masks, needed by
            mask-based metrics (``spurious_background``, ``pointing_game``, ...). Default: None.
        labels (Tensor or None, optional): ``(N,)`` true classes (for ``targets="label"`` and metrics
            that read them); taken from the dataset's items when they carry them. Default: None.
        seed (int, optional): Seeds each method's attributions and each metric, as ``seed=`` does on
            the command line. Default: 0.
        device (str or torch.device, optional): ``auto`` (CUDA when available), ``cpu``, ``cuda``,
            ``cuda:N``. Default: auto.
        tracking (str, bool or None, optional): None/False: nothing logged; True or ``"mlflow"``:
            one MLflow run per method in the harness's store (``$HARNESS_HOME``, like a command-line
            run, with ``scores.csv``, curves and heat maps); any other string: that tracking URI.
            Default: None.
        mean (sequence of float or None, optional): Per-channel normalisation mean of ``inputs``
            (what substrates such as ``mean``/``black`` mean in input space); None: 0 (the inputs are
            pixel values). Default: None.
        std (sequence of float or None, optional): Per-channel standard deviation; None: 1. Default: None.
        batch_size (int, optional): Images per explainer call (the command line's ``eval.batch_size``). Default: 64.
        class_names (list of str or None, optional): Names of the classes, for the logged heat maps;
            None: ``"0"``, ``"1"``, ... Default: None.
        attributions (dict or None, optional): Precomputed maps ``{method name: (N, C|1, H, W)}``
            (e.g. from :func:`explain`), used instead of computing them. Default: None.
        indices (Tensor or None, optional): ``(N,)`` each input's id in its dataset, which seeds the
            metrics' and the stochastic explainers' per-sample random draws (the command line passes the test-split indices it
            explains, logged as ``eval_indices.json``); None: 0..N-1. Default: None.
        train (tuple, Dataset, DataLoader or None, optional): The training split ROAR retrains on:
            ``(images, labels)`` tensors normalised as ``inputs``, or a Dataset/DataLoader of
            ``(image, label)``; only ``roar`` uses it, and ``roar`` refuses without it. Per method and
            fraction a deep copy of ``model`` with every parameter re-initialised (its modules'
            ``reset_parameters`` under ``seed``) is trained on the images with the method's top pixels
            removed; not cached (the command line caches). Default: None.
        training (dict or None, optional): Overrides of the training settings ROAR retrains with
            (the keys of ``model.training``: ``epochs``, ``batch_size``, ``lr``, ``optimizer``, ...; the
            default model's values otherwise, e.g. ``{"epochs": 2}``). Default: None.

    Returns:
        pandas.DataFrame: one row per (method, metric, sample), columns ``method``, ``metric``,
        ``sample`` (``indices``, by default the input's position), ``score`` (NaN where the metric is undefined), ``label``
        (-1 without labels), ``target``, ``predicted``, ``higher_is_better``. ``frame.attrs["run_ids"]``
        maps each method to its MLflow run when ``tracking`` is set.

    Raises:
        ConfigError: (one line, before any work) an unknown name or key, a value out of range,
            a metric whose needs (masks, background variants) the data does not meet, bad shapes.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer; got {batch_size!r}")
    explainers, scorers, nodes = build_components(methods, metrics, seed)
    run_device = resolve_device(str(device))
    retrainer = _retrainer(model, scorers, train, training, seed, run_device)
    stream = _batches(inputs, labels, masks, targets, indices, attributions, explainers, batch_size)
    first = next(stream)  # the first batch: the data's shape and fields, checked before any work
    images0, labels0, masks0 = first[0], first[1], first[2]
    channels = images0.shape[1]
    mean_t, std_t = ImageDataset.check_stats("evaluate", [0.0] * channels if mean is None else torch.as_tensor(mean).tolist(),
                                             [1.0] * channels if std is None else torch.as_tensor(std).tolist(), channels)
    dataset = InMemory(ImageSplit(images0[:0], torch.zeros(0, dtype=torch.long), None if masks0 is None else masks0[:0]),
                       mean_t, std_t, class_names or [])
    for name, metric in scorers.items():
        lacking = unmet_needs(metric, dataset)
        if lacking:
            hint = "pass masks=... (N, 1, H, W)" if lacking == "foreground masks" else "use the command line with a dataset that has them (spurious_shapes)"
            raise ConfigError(f"metric {name} needs {lacking}, which the given data does not have; {hint}, or leave {name} out")
    if targets == "label" and labels0 is None:
        raise ConfigError("targets='label' needs labels; pass labels=... or a dataset of (image, label) pairs")
    model = model.to(run_device).eval()
    context = {"groups": None, "mean": mean_t.to(run_device), "std": std_t.to(run_device), "dataset": dataset, "progress": progress.counter}
    per_batch: dict[str, dict[str, list[MetricResult]]] = {m: {k: [] for k in scorers} for m in explainers}
    timings: dict[str, dict[str, float]] = {m: {f"time_{k}_s": 0.0 for k in scorers} for m in explainers}
    kept: dict[str, list[torch.Tensor]] = {"ids": [], "labels": [], "targets": [], "predicted": []}
    shown = max(int(nodes.tracking.heatmaps), 0) if tracking else 0
    figure: dict[str, list[torch.Tensor]] = {"images": [], "masks": []} | {f"maps/{m}": [] for m in explainers}
    n_shown = 0
    retrain = {m: {} if retrainer is None else {"retrain": retrainer()} for m in explainers}   # ROAR: one retrainer per method, kept across batches
    # Streamed: each batch is explained by every method and scored by every metric, then dropped (issue 17);
    # only the per-sample results, and the first tracking.heatmaps images and maps for the figure, are kept.
    for images, batch_labels, batch_masks, batch_targets, ids, given in itertools.chain([first], stream):
        images = images.to(run_device)
        batch_labels = None if batch_labels is None else batch_labels.to(run_device)
        batch_masks = None if batch_masks is None else batch_masks.to(run_device).bool()
        chosen, predicted = _targets(model, images, batch_targets, batch_labels, batch_size)
        ids = ids.to(run_device)
        context |= {"labels": batch_labels, "masks": batch_masks, "indices": ids}
        for method, explainer in explainers.items():
            if method in given:
                maps = given[method].to(run_device)
            else:
                seed_everything(seed)
                maps = explain_samples(explainer, model, images, chosen, ids).detach()
            for name, metric in scorers.items():
                seed_everything(seed)
                start = time.perf_counter()
                per_batch[method][name].append(metric(model, images, chosen, maps, explainer=explainer, **context, **retrain[method]))
                timings[method][f"time_{name}_s"] += time.perf_counter() - start
            if n_shown < shown:
                figure[f"maps/{method}"].append(maps[:shown - n_shown].cpu())
        if n_shown < shown:
            figure["images"].append(images[:shown - n_shown].cpu())
            if batch_masks is not None:
                figure["masks"].append(batch_masks[:shown - n_shown].cpu())
            n_shown += min(len(images), shown - n_shown)
        kept["ids"].append(ids.cpu())
        kept["labels"].append(torch.full_like(chosen, -1).cpu() if batch_labels is None else batch_labels.cpu())
        kept["targets"].append(chosen.cpu())
        kept["predicted"].append(predicted.cpu())
    ids, all_labels, chosen, predicted = (torch.cat(kept[k]) for k in ("ids", "labels", "targets", "predicted"))
    if class_names is None:
        class_names = [str(c) for c in range(max(int(predicted.max()), int(chosen.max())) + 1)]
    dataset.set_classes(class_names, len(ids))
    frames, run_ids = [], {}
    for method, explainer in explainers.items():
        results = {name: concatenate(parts) for name, parts in per_batch[method].items()}
        for name, result in results.items():
            frames.append(pd.DataFrame({
                "method": method, "metric": name, "sample": ids.numpy(), "score": result.scores.detach().double().cpu().numpy(),
                "label": all_labels.numpy(), "target": chosen.numpy(),
                "predicted": predicted.numpy(), "higher_is_better": bool(result.higher_is_better),
            }))
        if tracking:
            joined = lambda key: torch.cat(figure[key]) if figure[key] else None  # noqa: E731  (None: no heat maps asked for)
            data = ImageSplit(joined("images") if shown else torch.empty(0), chosen if labels0 is None else all_labels,  # the targets without labels
                              joined("masks"))
            maps = joined(f"maps/{method}")
            run_ids[method] = _log(tracking, nodes, method, explainer, results, timings[method], data, predicted, chosen,
                                   torch.empty(0) if maps is None else maps, dataset, seed, ids)
    frame = pd.concat(frames, ignore_index=True)
    frame.attrs["run_ids"] = run_ids
    return frame


class InMemoryRetrain:
    """:class:`metrics.types.Retrain` for :func:`evaluate`: ``model``'s architecture trained from scratch on modified training images.

    Each call deep-copies ``model``, re-initialises every parameter (its modules' ``reset_parameters``
    under ``seed``) and trains it with :func:`harness.training.train` and the ``training`` settings. A model is
    kept per identity for the rest of the call (the streamed evaluation's later batches reuse it), but not cached
    on disk (the command line's :class:`harness.training.Retrainer` caches by key).
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, training: DictConfig, seed: int,
                 device: torch.device) -> None:
        self.model, self.train_images, self.train_labels = model, images, labels
        self.cfg, self.seed, self.device = OmegaConf.create({"training": training}), seed, device
        self.trained: dict[str, nn.Module] = {}   # by identity: the evaluation's later batches reuse the models of its first

    def __call__(self, images: Callable[[], torch.Tensor], identity: dict) -> nn.Module:
        key = json.dumps(identity, sort_keys=True, default=str)
        if key not in self.trained:
            self.trained[key] = self.fit(images())
        return self.trained[key]

    def fit(self, modified: torch.Tensor) -> nn.Module:
        from harness.training import train as fit

        if modified.shape != self.train_images.shape:
            raise ValueError(f"retrain: modified training images have shape {tuple(modified.shape)}; expected {tuple(self.train_images.shape)}")
        fresh = copy.deepcopy(self.model)
        torch.manual_seed(self.seed)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        fit(fresh, ImageSplit(modified.cpu(), self.train_labels), self.cfg, self.seed, self.device)
        return fresh.eval()


def _retrainer(model: nn.Module, scorers: dict[str, Metric], train: Any, training: Mapping[str, Any] | None, seed: int,
               device: torch.device) -> Callable[[], InMemoryRetrain] | None:
    """What ROAR retrains with (a factory, one retrainer per method), None without ROAR; one-line refusals before any work."""
    roar = next((name for name, metric in scorers.items() if isinstance(metric, ROAR)), None)
    if roar is None:
        return None
    if train is None:
        raise ConfigError(f"metric {roar} retrains the model on training images with the top pixels removed; pass train=(images, labels) "
                          f"(or a Dataset/DataLoader of (image, label)) and optionally training={{'epochs': ...}}, or leave {roar} out")
    from harness.training import check_training

    pairs = _batches(train[0], train[1], None, None, None, None, {}, 256) if isinstance(train, tuple) and len(train) == 2 \
        else _batches(train, None, None, None, None, None, {}, 256)
    parts = list(pairs)
    images = torch.cat([p[0] for p in parts])
    labels = None if any(p[1] is None for p in parts) else torch.cat([p[1] for p in parts])
    if images.dim() != 4 or labels is None or tuple(torch.as_tensor(labels).shape) != (images.shape[0],):
        raise ConfigError(f"train must give images (N, C, H, W) and one label each; got images {tuple(images.shape)} and "
                          f"{'no labels' if labels is None else f'labels {tuple(torch.as_tensor(labels).shape)}'}")
    stuck = [name or type(m).__name__ for name, m in model.named_modules()
             if any(True for _ in m.parameters(recurse=False)) and not hasattr(m, "reset_parameters")]
    if stuck:
        raise ConfigError(f"metric {roar} retrains the model from scratch, but module {stuck[0]} has parameters and no reset_parameters(); "
                          "leave roar out or use the command line with model=custom")
    node = _with_overrides(compose_config([]).model.training, dict(training or {}), "training")
    check_training(OmegaConf.create({"training": node}))
    images, labels = images.float().cpu(), torch.as_tensor(labels, dtype=torch.long).cpu()
    return lambda: InMemoryRetrain(model, images, labels, node, seed, device)


def _log(tracking: str | bool, nodes: DictConfig, method: str, explainer: Explainer, results: dict[str, MetricResult], timings: dict[str, float],
         data: ImageSplit, predicted: torch.Tensor, targets: torch.Tensor, maps: torch.Tensor, dataset: InMemory, seed: int,
         indices: torch.Tensor | None = None) -> str:
    """One MLflow run for ``method``'s results, logged as a command-line run logs them."""
    import mlflow

    from harness import tracking as store

    cfg = nodes.copy()
    with open_dict(cfg):
        if isinstance(tracking, str) and tracking != "mlflow":
            cfg.tracking.uri = tracking
        cfg.method = nodes.method.get(method, {"_target_": f"{type(explainer).__module__}.{type(explainer).__qualname__}"})
    uri = store.tracking_uri(cfg)
    store.check_tracking(uri)
    mlflow.set_tracking_uri(uri)
    experiment = store.experiment_id(uri, cfg.tracking.experiment, store.artifact_root(cfg, uri))
    tags = {"harness.method": method, "harness.metrics": ",".join(results), "harness.dataset": "in-memory", "harness.model": "in-memory",
            "harness.entry": "harness.evaluate"}
    summary = reports.summary(results, seed=seed)
    with mlflow.start_run(experiment_id=experiment, run_name=f"{method}-evaluate", tags=tags) as active:
        mlflow.log_params(store.flat_params(OmegaConf.masked_copy(cfg, ["method", "metric", "seed"])))
        store.log_results(cfg, active.info.run_id, summary, results, {}, timings, data, predicted, targets, maps.cpu(), dataset, indices=indices)
    return active.info.run_id


def run(overrides: list[str]) -> RunResult:
    """``harness <overrides>`` from Python: the same pre-flight checks, composition, run and MLflow logging.

    Args:
        overrides (list of str): Command-line overrides, e.g. ``["method=integrated_gradients",
            "method.n_steps=16", "metric=[deletion]"]``. One job: a sweep (``-m`` or ``a,b``
            values) is refused; run it with the command line.

    Returns:
        RunResult: ``summary`` (one row per metric: value, 95 % interval, n, direction), ``run_id``
        (the MLflow run) and ``outcome`` (per-sample results, model summary, timings).

    Raises:
        ConfigError: (one line, before any work) whatever the command line would refuse.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from harness.preflight import check
    from harness.runner import run as run_job

    overrides = [str(o) for o in overrides]
    if any(o in ("-m", "--multirun") for o in overrides) or any(p.is_sweep_override() for p in OverridesParser.create().parse_overrides(
            [o for o in overrides if not o.startswith("-")])):
        raise ConfigError("harness.run runs one job; give one value per key (a sweep runs from the command line: harness -m key=a,b)")
    check(overrides)
    cfg = compose_config(overrides, return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    task = list(cfg.hydra.overrides.task)
    with open_dict(cfg):
        del cfg["hydra"]
    outcome = run_job(cfg, choices=choices, overrides=task)
    return RunResult(outcome.summary, outcome.run_id, outcome)
