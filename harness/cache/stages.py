"""The pipeline stages a run caches besides trained models: generated dataset splits and attributions.

A split is generated once per (dataset config, seed, generator code); attributions are
stored per evaluation batch (:func:`cached_attribution_batch`): one entry per
(:func:`harness.cache.keys.attribution_key`, the batch's sample indices), so sweep jobs
that differ only in the metric share them, and a run that was killed half-way and is
run again reuses the batches it had computed. The stochastic explainers of this package
(:class:`methods.PerSampleSeeded`: SmoothGrad noise, LIME samples, ...) draw per sample from the
run seed and the sample's test-split index, given as ``ids``, so a sample's map does not depend
on the batch or shard; the global generators are seeded from the run seed and the batch's sample
indices (:func:`batch_seed`) for any other (library) explainer, so a reused batch equals a recomputed one. ``cache.datasets`` and
``cache.attributions`` (true by default) turn either off. Trained models are cached by
:func:`harness.training.trained_model`.
"""
from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from harness.cache.keys import attribution_key, content_key, split_key
from harness.cache.store import store, torch_load, torch_save
from harness.datasets import Dataset, ImageSplit, LazySplit, Streams
from harness.seeding import seed_everything
from methods import Explainer, explain_samples


def cached_split(cfg: DictConfig, dataset: Dataset, name: str, cache_dir: Path) -> ImageSplit:
    """``dataset.split(name)``, generated once per (dataset config, seed, generator code) and cached."""
    if not cfg.get("cache", {}).get("datasets", True):
        return dataset.split(name)
    about = f"{type(dataset).__name__} {name} split, seed {cfg.seed}"
    split, _ = store(cache_dir, "datasets", cfg.get("cache")).fetch(
        split_key(cfg.dataset, cfg.seed, name), lambda: dataset.split(name), load=lambda path: ImageSplit(**torch_load(path)),
        save=lambda value, path: torch_save(vars(value), path), about=about)
    return split


class SplitSource:
    """One split of a run's dataset, made or loaded only when something asks for it.

    ``whole()`` is :func:`cached_split` (every sample in memory: what training reads), made once and
    kept until :meth:`drop`; ``streamed()`` is what a pass over the split reads batch by batch (the model
    summary's accuracies): the dataset's :class:`~harness.datasets.LazySplit` where it makes samples by
    index (:class:`~harness.datasets.Streams`), else (or once the whole split is in memory anyway) the
    whole split; ``select(indices)`` makes just those samples. So a run whose model comes from the cache
    never makes or loads its training split (``loaded`` stays False).
    """

    def __init__(self, cfg: DictConfig, dataset: Dataset, name: str, cache_dir: Path) -> None:
        self.cfg, self.dataset, self.name, self.cache_dir = cfg, dataset, name, cache_dir
        self._whole: ImageSplit | None = None
        self.loaded = False  # whether the whole split was made or loaded (for the log and tests)

    def whole(self) -> ImageSplit:
        if self._whole is None:
            self._whole, self.loaded = cached_split(self.cfg, self.dataset, self.name, self.cache_dir), True
        return self._whole

    def streamed(self) -> ImageSplit | LazySplit:
        if self._whole is None and isinstance(self.dataset, Streams):
            return self.dataset.view(self.name)
        return self.whole()

    def __len__(self) -> int:
        known = self.dataset.split_size(self.name) if self._whole is None else None
        return int(known) if known is not None else len(self.whole())

    def select(self, indices: torch.Tensor) -> ImageSplit:
        """The samples at ``indices``, made alone where the dataset makes samples by index."""
        if self._whole is None and isinstance(self.dataset, Streams):
            return self.dataset.samples(self.name, indices)
        return self.whole().select(indices)

    def drop(self) -> None:
        """Forget the whole split (it is made or loaded again if asked for)."""
        self._whole = None


def batch_seed(seed: int, indices: torch.Tensor) -> int:
    """The seed of one evaluation batch: from the run seed and the batch's sample indices (same batch, same draws)."""
    return int(content_key({"seed": int(seed), "indices": indices.tolist()}), 16) % 2**31


def cached_attribution_batch(cfg: DictConfig, explainer: Explainer, model: nn.Module, model_key: str, inputs: torch.Tensor,
                             targets: torch.Tensor, indices: torch.Tensor, device: torch.device, cache_dir: Path) -> tuple[torch.Tensor, bool]:
    """``(maps, hit)``: the explainer's maps for one evaluation batch (test-split ``indices``), computed once and cached."""

    def compute() -> torch.Tensor:
        seed_everything(batch_seed(cfg.seed, indices))
        return explain_samples(explainer, model, inputs, targets, indices.to(inputs.device)).detach()

    if not cfg.get("cache", {}).get("attributions", True):
        return compute(), False
    key = content_key({"attributions": attribution_key(cfg, model_key, device), "indices": indices.tolist()})
    about = f"{type(explainer).__name__} on model {model_key}, {len(inputs)} samples from index {int(indices[0])}"
    maps, hit = store(cache_dir, "attributions", cfg.get("cache")).fetch(
        key, lambda: compute().cpu(), load=lambda path: torch_load(path)["attributions"],
        save=lambda value, path: torch_save({"attributions": value}, path), about=about)
    return maps.to(device), hit


def attribution_set_key(cfg: DictConfig, model_key: str, device: torch.device) -> str:
    """Key of the record that every batch of run ``cfg``'s attributions (its shard's, if sharded) is cached.

    The runner stores it after the last batch (:func:`mark_attributions_cached`); the sweep's cost
    estimate looks it up, so an evaluation counts as cached exactly when a run cached all of its batches.
    """
    key = attribution_key(cfg, model_key, device)
    shards = int(cfg.eval.get("shards", 1))
    return key if shards == 1 else content_key({"attributions": key, "shard": [shards, int(cfg.eval.get("shard", 0))]})


def mark_attributions_cached(cfg: DictConfig, model_key: str, device: torch.device, cache_dir: Path, batches: int) -> None:
    """Record that all ``batches`` attribution batches of run ``cfg`` are in the cache (when ``cache.attributions`` is on)."""
    if cfg.get("cache", {}).get("attributions", True):
        store(cache_dir, "attributions", cfg.get("cache")).fetch(
            attribution_set_key(cfg, model_key, device), lambda: {"batches": batches},
            about=f"record: all {batches} attribution batches cached")
