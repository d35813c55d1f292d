"""Checks of a composed config's run settings, each failing in one line before any work.

Every knob's type and range (one declaration, :mod:`harness.preflight.knobs`),
``device``, ``eval.n_samples`` against the test split, and whether every selected
metric's declared ``needs`` (:class:`metrics.Metric`) are met by
the dataset (:class:`harness.datasets.Dataset`): foreground masks, background-swapped
test variants. The components' own arguments are checked by their constructors.
"""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from harness.build import ConfigError
from harness.datasets import Dataset
from harness.preflight.knobs import PIXEL_KNOBS, check_knobs
from metrics import Metric
from metrics.background_gap import OTHER, SAME


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N`` as a device; one line if unusable."""
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
    """Every knob of ``cfg`` typed and range-checked from its declaration (:mod:`harness.preflight.knobs`), the device,
    and that some metric is selected."""
    check_knobs(cfg)
    if not cfg.get("metric"):
        raise ConfigError("metric selects no metric; choose at least one, e.g. metric=[deletion,insertion]")
    resolve_device(str(cfg.device))
    shards, shard = cfg.get("eval", {}).get("shards", 1), cfg.get("eval", {}).get("shard", 0)
    if shard >= shards:
        raise ConfigError(f"eval.shard must be in [0, eval.shards) = [0, {shards}); got eval.shard={shard}")


def check_against_dataset(cfg: DictConfig, dataset: Dataset) -> None:
    """Knobs bounded by the dataset: ``eval.n_samples`` by the test split (it would be cut silently), and the
    pixel knobs (:data:`harness.preflight.knobs.PIXEL_KNOBS`) of the method and metrics by the image size."""
    nodes = [("method", cfg.method)] + [(f"metric.{name}", node) for name, node in cfg.metric.items()]
    for where, node in nodes:
        for key in PIXEL_KNOBS:
            value = node.get(key) if isinstance(node, DictConfig) else None
            if isinstance(value, int) and value > dataset.image_size:
                raise ConfigError(f"{where}.{key}={value} is larger than the {dataset.image_size}-pixel images of "
                                  f"{type(dataset).__name__}; allowed: 1..{dataset.image_size}")
    size = dataset.split_size("test")
    if size is not None and cfg.eval.n_samples > size:
        raise ConfigError(f"eval.n_samples={cfg.eval.n_samples} but the test split of {type(dataset).__name__} has {size} images; "
                          f"allowed: 1..{size} (or a larger dataset.n_test)")


def unmet_needs(metric: Metric, dataset: Dataset) -> str | None:
    """What a metric's declared ``needs`` ("masks", "background_variants") lack in the dataset, or None."""
    if "masks" in metric.needs and not dataset.has_masks:
        return "foreground masks"
    if "background_variants" in metric.needs and not all(v in dataset.VARIANTS for v in (SAME, OTHER)):
        return "background-swapped test images"
    return None


def check_needs(metrics: dict[str, Metric], dataset: Dataset) -> None:
    """Stop when a selected metric needs what the dataset lacks, naming the metrics that would run."""
    unmet = {name: unmet_needs(metric, dataset) for name, metric in metrics.items()}
    for name, lacking in unmet.items():
        if lacking:
            usable = ",".join(n for n, miss in unmet.items() if not miss) or "deletion,insertion"
            raise ConfigError(f"metric {name} needs {lacking}, which dataset {type(dataset).__name__} does not have; "
                              f"leave it out (metric=[{usable}]) or use a dataset that has them (spurious_shapes)")
