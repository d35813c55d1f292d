"""Checks of a composed config's run settings, each failing in one line before any work.

``seed``, ``eval.*``, ``device``, the ``cache.*`` and ``sweep.resume`` switches, and
whether every selected metric's declared ``needs`` (:class:`metrics.Metric`) are met by
the dataset (:class:`harness.datasets.Dataset`): foreground masks, background-swapped
test variants. The components' own arguments are checked by their constructors.
"""
from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from harness.build import ConfigError
from harness.datasets import SAMPLING, Dataset
from metrics import Metric
from metrics.background_gap import OTHER, SAME

TARGETS = ("predicted", "label")


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


def _positive_int(cfg: DictConfig, key: str) -> None:
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a positive integer; got {value!r}")


def check_run_settings(cfg: DictConfig) -> None:
    """The run-wide settings of ``cfg`` (everything outside the component nodes)."""
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {cfg.seed!r}")
    _positive_int(cfg, "eval.n_samples")
    _positive_int(cfg, "eval.batch_size")
    if cfg.eval.target not in TARGETS:
        raise ConfigError(f"eval.target must be one of {', '.join(TARGETS)}; got {cfg.eval.target!r}")
    if OmegaConf.select(cfg, "eval.sample", default="stratified") not in SAMPLING:
        raise ConfigError(f"eval.sample must be one of {', '.join(SAMPLING)}; got {cfg.eval.sample!r}")
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
