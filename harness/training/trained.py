"""A run's model: a checkpoint, torchvision's published weights, or trained here and cached on disk.

Where the weights come from is ``model.weights`` (:mod:`harness.models.weights`). A
model trained (or fine-tuned, when published weights do not fit the dataset's
classes) here is cached under :func:`harness.cache.model_key`, a hash of everything
that determines the weights; the cache file holds the state dict and the training
summary (:func:`harness.training.evaluation.summarise`), written to a temporary file
and renamed into place, so a reader never sees half a file and two processes training
the same model produce the same bytes. A file that fails to load (truncated, corrupt,
or from another architecture) is reported, retrained and replaced, never used.

:class:`Retrainer` is the ``retrain`` the runner hands the metrics (the
:class:`metrics.types.Retrain` seam, used by ROAR): the run's architecture trained from
scratch, from the run's seed, with the run's training settings, on training images a
metric modified (same labels), cached like any trained model under
:func:`harness.cache.model_key` extended with the removal's identity (the metric's
settings, the method config and code, the key of the model that made the attributions).
A model loaded from a checkpoint or published weights is retrained from scratch, never
from those weights (ROAR compares models trained alike on removed features).

The training split is asked for only when needed (:class:`TrainingData`, the runner's
:class:`harness.cache.SplitSource`): whole for training and retraining, batch by batch (made by
index where the dataset can) for the train accuracy of a checkpoint's or published weights'
summary, and not at all for a model from the cache, whose summary is stored with its weights.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from omegaconf import DictConfig
from torch import nn

from harness.build import plain
from harness.cache import model_key, store, target_fingerprint, torch_save
from harness.datasets import Dataset, ImageSplit, LazySplit
from harness.models import build_network, load_checkpoint, load_published, weights_source
from harness.training.evaluation import accuracy, summarise
from harness.training.loop import train


@runtime_checkable
class TrainingData(Protocol):
    """A training split made or loaded only when asked for (:class:`harness.cache.SplitSource`)."""

    def whole(self) -> ImageSplit: ...     # every sample in memory (training)

    def streamed(self) -> ImageSplit | LazySplit: ...   # read batch by batch (an accuracy)


@dataclass
class InMemory:
    """An :class:`ImageSplit` already in memory, as :class:`TrainingData`."""

    split: ImageSplit

    def whole(self) -> ImageSplit:
        return self.split

    def streamed(self) -> ImageSplit:
        return self.split


def as_training_data(train: ImageSplit | TrainingData) -> TrainingData:
    return InMemory(train) if isinstance(train, ImageSplit) else train


@dataclass
class TrainedModel:
    model: nn.Module
    key: str                 # harness.cache.model_key of the weights
    cached: bool             # True when nothing was trained in this call
    summary: dict[str, float] = field(default_factory=dict)
    source: str = ""         # for the log: "loaded from <path>", "published weights", "cached" or "trained"


def trained_model(
    cfg: DictConfig, dataset_cfg: DictConfig, dataset: Dataset, train_split: ImageSplit | TrainingData,
    test_split: ImageSplit | LazySplit, seed: int, cache_dir: Path, device: torch.device, cache_cfg: DictConfig | None = None,
) -> TrainedModel:
    """The model of ``cfg``: published weights, a checkpoint, the cache, or trained (or fine-tuned) and cached.

    ``train_split`` is read only to train (whole) or for a loaded model's train accuracy (streamed); a
    cached model's summary comes from the cache, so its training split is never asked for.
    """
    train_data = as_training_data(train_split)
    source = weights_source(cfg)
    key = model_key(cfg, dataset_cfg, seed)
    model = build_network(cfg, dataset).to(device)
    if source is not None and source != "DEFAULT":
        path = Path(source).expanduser().resolve()
        load_checkpoint(model, path)
        return TrainedModel(model.eval(), key=key, cached=True, summary=summarise(model, train_data.streamed(), test_split, device, dataset),
                            source=f"loaded from {path}")
    if source == "DEFAULT":
        torch.manual_seed(seed)
        model = build_network(cfg, dataset)
        if load_published(cfg, model):  # the published head fits: use the weights as they are
            model = model.to(device).eval()
            return TrainedModel(model, key=key, cached=True, summary=summarise(model, train_data.streamed(), test_split, device, dataset),
                                source="published weights")

    def compute() -> tuple[nn.Module, dict]:
        torch.manual_seed(seed)
        fresh = build_network(cfg, dataset)  # initial weights from the seed alone (and the published ones, to fine-tune)
        if source == "DEFAULT":
            load_published(cfg, fresh)
        fresh = fresh.to(device)
        whole = train_data.whole()   # training reads the split in memory (its seeded minibatches index it)
        train(fresh, whole, cfg, seed, device)
        return fresh, summarise(fresh, whole, test_split, device, dataset)

    models = store(cache_dir, "models", cache_cfg)
    (trained, summary), hit = models.fetch(key, compute, lambda path: (model, load_checkpoint(model, path)), save_trained,
                                           about=describe(cfg, dataset_cfg, seed))
    return TrainedModel(trained.eval(), key=key, cached=hit, summary=summary, source="cached" if hit else "trained")


def save_trained(value: tuple[nn.Module, dict], path: Path) -> None:
    """Write a trained model's state dict (on the CPU) and its summary: the models cache's file format."""
    trained, summary = value
    torch_save({"state_dict": {k: v.cpu() for k, v in trained.state_dict().items()}, "summary": summary}, path)


def describe(cfg: DictConfig, dataset_cfg: DictConfig, seed: int) -> str:
    return f"{cfg.network.get('_target_', '?').rsplit('.', 1)[-1]} on {dataset_cfg.get('_target_', '?').rsplit('.', 1)[-1]}, seed {seed}"


def retrained_key(cfg: DictConfig, attribution_model: str, identity: dict) -> str:
    """The cache key of the run's model retrained after a metric's feature removal (``identity``, e.g. ROAR's
    :meth:`~metrics.roar.ROAR.identity`): the model's key extended with the removal, the method config and code and
    the key of the model whose attributions chose the features (shared with the sweep's cost estimate)."""
    removal = {"metric": identity, "method": plain(cfg.method), "method_code": target_fingerprint(cfg.method),
               "attribution_model": attribution_model}
    return model_key(cfg.model, cfg.dataset, cfg.seed, removal=removal)


class Retrainer:
    """The run's architecture retrained from scratch on modified training images, cached (:class:`metrics.types.Retrain`).

    ``retrainer(images, identity)``: ``images()`` (called only when the model is not cached)
    gives the modified training images, one per ``train_labels``; ``identity`` (plain values)
    says what the metric did to them. Returns the trained model in eval mode on the run's device.
    ``train_images`` and ``train_labels`` make or load the training split on first use.
    """

    def __init__(self, cfg: DictConfig, dataset: Dataset, train_split: ImageSplit | TrainingData, model: str, cache_dir: Path,
                 device: torch.device) -> None:
        self.cfg, self.dataset, self.device, self.cache_dir = cfg, dataset, device, cache_dir
        self.train_data = as_training_data(train_split)
        self.attribution_model = model   # key of the model whose attributions chose the removed features
        self.hits = 0                    # how many retrained models came from the cache (for the log and tests)

    @property
    def train_images(self) -> torch.Tensor:
        return self.train_data.whole().images

    @property
    def train_labels(self) -> torch.Tensor:
        return self.train_data.whole().labels

    def __call__(self, images: Callable[[], torch.Tensor], identity: dict) -> nn.Module:
        cfg = self.cfg
        key = retrained_key(cfg, self.attribution_model, identity)
        model = build_network(cfg.model, self.dataset).to(self.device)

        def compute() -> tuple[nn.Module, dict]:
            modified = images()
            if modified.shape != self.train_images.shape:
                raise ValueError(f"retrain: modified training images have shape {tuple(modified.shape)}; "
                                 f"expected the training split's {tuple(self.train_images.shape)}")
            torch.manual_seed(cfg.seed)
            fresh = build_network(cfg.model, self.dataset).to(self.device)
            data = ImageSplit(modified.cpu(), self.train_labels)
            train(fresh, data, cfg.model, cfg.seed, self.device)
            return fresh, {"train_accuracy": float(accuracy(fresh, data, self.device).float().mean())}

        (trained, _), hit = store(self.cache_dir, "models", cfg.get("cache")).fetch(
            key, compute, lambda path: (model, load_checkpoint(model, path)), save_trained,
            about=f"{describe(cfg.model, cfg.dataset, cfg.seed)}, retrained after feature removal")
        self.hits += int(hit)
        return trained.eval()
