"""The pipeline stages a run caches besides trained models: generated dataset splits and attributions.

A split is generated once per (dataset config, seed, generator code); attributions are
stored per evaluation batch (:func:`cached_attribution_batch`): one entry per
(:func:`harness.cache.keys.attribution_key`, the batch's sample indices), so sweep jobs
that differ only in the metric share them, and a run that was killed half-way and is
run again reuses the batches it had computed. For explainers whose maps do not depend on
the batch (:func:`reusable_per_sample`) the stored batches of an attribution key are listed
in a catalogue entry, and a sample's map is found in whichever batch holds it: a run at
another ``eval.batch_size`` or sharding reuses them too. The stochastic explainers of this package
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
from harness.cache.store import Store, store, torch_load, torch_save
from harness.datasets import Dataset, ImageSplit, LazySplit, Streams
from harness.seeding import seed_everything
from methods import DependsOnBatch, Explainer, explain_samples


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


def reusable_per_sample(explainer: Explainer) -> bool:
    """Whether a sample's cached map may be reused in another batching: an explainer of this project's ``methods``
    whose maps do not depend on the batch (deterministic, or :class:`methods.PerSampleSeeded`; not
    :class:`methods.DependsOnBatch` with ``depends_on_batch()``). Any other explainer (a user's own) is cached per batch."""
    if type(explainer).__module__.split(".")[0] != "methods":
        return False
    return not (isinstance(explainer, DependsOnBatch) and explainer.depends_on_batch())


def catalogue_key(attributions: str) -> str:
    """Key of the list of stored batches (their keys and sample indices) of one attribution key."""
    return content_key({"attribution_batches": attributions})


def stored_batches(cache: Store, attributions: str) -> list[list]:
    """``[[batch key, [test-split indices]], ...]``: the batches of per-sample maps stored under ``attributions``."""
    return (cache.load(catalogue_key(attributions)) or {}).get("batches", [])


def add_stored_batch(cache: Store, attributions: str, key: str, indices: torch.Tensor) -> None:
    """List a stored batch in its attribution key's catalogue (under the catalogue's lock: parallel jobs append safely)."""
    with cache.lock(catalogue_key(attributions)):
        listed = stored_batches(cache, attributions)
        if any(entry == key for entry, _ in listed):
            return
        cache.save(catalogue_key(attributions), {"batches": [*listed, [key, indices.tolist()]]},
                   about=f"catalogue: {len(listed) + 1} batches of per-sample attribution maps")


def reused_maps(cache: Store, attributions: str, indices: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
    """``(maps, found)``: the maps of ``indices`` found in any stored batch of ``attributions`` (rows not found are
    zero; None if none is found) and which were found."""
    where: dict[int, tuple[str, int]] = {}
    for key, stored in stored_batches(cache, attributions):
        where.update({index: (key, row) for row, index in enumerate(stored)})
    wanted = [where.get(index) for index in indices.tolist()]
    found = torch.tensor([w is not None for w in wanted], dtype=torch.bool)
    maps = None
    for key in {w[0] for w in wanted if w is not None}:
        batch = cache.load(key, lambda path: torch_load(path)["attributions"])
        rows = [i for i, w in enumerate(wanted) if w is not None and w[0] == key]
        if batch is None:  # pruned or unreadable: those samples are computed again
            found[rows] = False
            continue
        if maps is None:
            maps = batch.new_zeros((len(indices), *batch.shape[1:]))
        maps[rows] = batch[[wanted[i][1] for i in rows]]
    return (maps if bool(found.any()) else None), found


def cached_attribution_batch(cfg: DictConfig, explainer: Explainer, model: nn.Module, model_key: str, inputs: torch.Tensor,
                             targets: torch.Tensor, indices: torch.Tensor, device: torch.device, cache_dir: Path) -> tuple[torch.Tensor, int]:
    """``(maps, reused)``: the explainer's maps for one evaluation batch (test-split ``indices``) and how many of its
    samples' maps came from the cache.

    A batch is stored under (attribution key, its indices). For an explainer whose maps do not depend on the batch
    (:func:`reusable_per_sample`) the stored batches are also listed per attribution key, and a batch not stored as
    such takes each sample's map from whichever stored batch holds it, computing only the samples none holds (stored
    as a batch of their own): a run at another ``eval.batch_size`` or sharding reuses every map already computed.
    """

    def compute(rows: torch.Tensor) -> torch.Tensor:
        seed_everything(batch_seed(cfg.seed, indices[rows]))
        return explain_samples(explainer, model, inputs[rows], targets[rows], indices[rows].to(inputs.device)).detach()

    everything = torch.arange(len(indices))
    if not cfg.get("cache", {}).get("attributions", True):
        return compute(everything), 0
    cache = store(cache_dir, "attributions", cfg.get("cache"))
    attributions = attribution_key(cfg, model_key, device)
    per_sample = reusable_per_sample(explainer)

    def fetch(rows: torch.Tensor) -> tuple[torch.Tensor, bool]:
        picked = indices[rows]
        key = content_key({"attributions": attributions, "indices": picked.tolist()})
        about = f"{type(explainer).__name__} on model {model_key}, {len(picked)} samples from index {int(picked[0])}"
        maps, hit = cache.fetch(key, lambda: compute(rows).cpu(), load=lambda path: torch_load(path)["attributions"],
                                save=lambda value, path: torch_save({"attributions": value}, path), about=about)
        if per_sample and not hit:
            add_stored_batch(cache, attributions, key, picked)
        return maps, hit

    key = content_key({"attributions": attributions, "indices": indices.tolist()})
    if not per_sample or cache.contains(key):
        maps, hit = fetch(everything)
        return maps.to(device), len(indices) if hit else 0
    maps, found = reused_maps(cache, attributions, indices)
    if maps is None:
        maps, hit = fetch(everything)
        return maps.to(device), len(indices) if hit else 0
    missing = (~found).nonzero().flatten()
    if len(missing):
        computed, _ = fetch(missing)
        maps[missing] = computed.to(maps.dtype)
    return maps.to(device), int(found.sum())


def attribution_set_key(cfg: DictConfig, model_key: str, device: torch.device) -> str:
    """Key of the record that every batch of run ``cfg``'s attributions (its shard's, if sharded) is cached.

    The runner stores it after the last batch (:func:`mark_attributions_cached`); the sweep's cost
    estimate looks it up, so an evaluation counts as cached exactly when a run cached all of its batches.
    """
    samples = {"eval": {k: cfg.eval[k] for k in ("n_samples", "batch_size")}, "sample": cfg.eval.get("sample", "first")}
    key = content_key({"attributions": attribution_key(cfg, model_key, device), **samples})
    shards = int(cfg.eval.get("shards", 1))
    return key if shards == 1 else content_key({"attributions": key, "shard": [shards, int(cfg.eval.get("shard", 0))]})


def mark_attributions_cached(cfg: DictConfig, model_key: str, device: torch.device, cache_dir: Path, batches: int) -> None:
    """Record that all ``batches`` attribution batches of run ``cfg`` are in the cache (when ``cache.attributions`` is on)."""
    if cfg.get("cache", {}).get("attributions", True):
        store(cache_dir, "attributions", cfg.get("cache")).fetch(
            attribution_set_key(cfg, model_key, device), lambda: {"batches": batches},
            about=f"record: all {batches} attribution batches cached")
