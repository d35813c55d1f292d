"""The pipeline stages a run caches besides trained models: generated dataset splits and attributions.

A split is generated once per (dataset config, seed, generator code); attributions are
computed batch by batch once per :func:`harness.cache.keys.attribution_key`, so sweep
jobs that differ only in the metric share them. ``cache.datasets`` and
``cache.attributions`` (true by default) turn either off. Trained models are cached by
:func:`harness.training.trained_model`.
"""
from __future__ import annotations

from pathlib import Path

import mlflow
import torch
from omegaconf import DictConfig
from torch import nn

from harness import progress
from harness.cache.keys import attribution_key, split_key
from harness.cache.store import store, torch_load, torch_save
from harness.datasets import Dataset, ImageSplit
from harness.seeding import seed_everything
from methods import Explainer


def cached_split(cfg: DictConfig, dataset: Dataset, name: str, cache_dir: Path) -> ImageSplit:
    """``dataset.split(name)``, generated once per (dataset config, seed, generator code) and cached."""
    if not cfg.get("cache", {}).get("datasets", True):
        return dataset.split(name)
    about = f"{type(dataset).__name__} {name} split, seed {cfg.seed}"
    split, _ = store(cache_dir, "datasets", cfg.get("cache")).fetch(
        split_key(cfg.dataset, cfg.seed, name), lambda: dataset.split(name), load=lambda path: ImageSplit(**torch_load(path)),
        save=lambda value, path: torch_save(vars(value), path), about=about)
    return split


def cached_attributions(cfg: DictConfig, explainer: Explainer, model: nn.Module, model_key: str, inputs: torch.Tensor,
                        targets: torch.Tensor, device: torch.device, cache_dir: Path) -> torch.Tensor:
    """The explainer's maps for ``inputs``, computed batch by batch once and cached (tag ``harness.attribution_cache``)."""

    def compute() -> torch.Tensor:
        seed_everything(cfg.seed)
        batches = list(zip(inputs.split(cfg.eval.batch_size), targets.split(cfg.eval.batch_size)))
        return torch.cat([explainer(model, x, t).detach() for x, t in progress.bar(batches, desc="attributions", unit="batch")])

    if not cfg.get("cache", {}).get("attributions", True):
        return compute()
    about = f"{type(explainer).__name__} on model {model_key}, {len(inputs)} samples"
    maps, hit = store(cache_dir, "attributions", cfg.get("cache")).fetch(
        attribution_key(cfg, model_key, device), lambda: compute().cpu(), load=lambda path: torch_load(path)["attributions"],
        save=lambda value, path: torch_save({"attributions": value}, path), about=about)
    mlflow.set_tag("harness.attribution_cache", "hit" if hit else "computed")
    return maps.to(device)
