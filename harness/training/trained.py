"""A run's model: a checkpoint, torchvision's published weights, or trained here and cached on disk.

Where the weights come from is ``model.weights`` (:mod:`harness.models.weights`). A
model trained (or fine-tuned, when published weights do not fit the dataset's
classes) here is cached under :func:`harness.cache.model_key`, a hash of everything
that determines the weights; the cache file holds the state dict and the training
summary (:func:`harness.training.evaluation.summarise`), written to a temporary file
and renamed into place, so a reader never sees half a file and two processes training
the same model produce the same bytes. A file that fails to load (truncated, corrupt,
or from another architecture) is reported, retrained and replaced, never used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from harness.cache import model_key, store, torch_save
from harness.datasets import Dataset, ImageSplit
from harness.models import build_network, load_checkpoint, load_published, weights_source
from harness.training.evaluation import summarise
from harness.training.loop import train


@dataclass
class TrainedModel:
    model: nn.Module
    key: str                 # harness.cache.model_key of the weights
    cached: bool             # True when nothing was trained in this call
    summary: dict[str, float] = field(default_factory=dict)
    source: str = ""         # for the log: "loaded from <path>", "published weights", "cached" or "trained"


def trained_model(
    cfg: DictConfig, dataset_cfg: DictConfig, dataset: Dataset, train_split: ImageSplit, test_split: ImageSplit,
    seed: int, cache_dir: Path, device: torch.device, cache_cfg: DictConfig | None = None,
) -> TrainedModel:
    """The model of ``cfg``: published weights, a checkpoint, the cache, or trained (or fine-tuned) and cached."""
    source = weights_source(cfg)
    key = model_key(cfg, dataset_cfg, seed)
    model = build_network(cfg, dataset).to(device)
    if source is not None and source != "DEFAULT":
        path = Path(source).expanduser().resolve()
        load_checkpoint(model, path)
        return TrainedModel(model.eval(), key=key, cached=True, summary=summarise(model, train_split, test_split, device, dataset),
                            source=f"loaded from {path}")
    if source == "DEFAULT":
        torch.manual_seed(seed)
        model = build_network(cfg, dataset)
        if load_published(cfg, model):  # the published head fits: use the weights as they are
            model = model.to(device).eval()
            return TrainedModel(model, key=key, cached=True, summary=summarise(model, train_split, test_split, device, dataset),
                                source="published weights")

    def compute() -> tuple[nn.Module, dict]:
        torch.manual_seed(seed)
        fresh = build_network(cfg, dataset)  # initial weights from the seed alone (and the published ones, to fine-tune)
        if source == "DEFAULT":
            load_published(cfg, fresh)
        fresh = fresh.to(device)
        train(fresh, train_split, cfg, seed, device)
        return fresh, summarise(fresh, train_split, test_split, device, dataset)

    def load(path: Path) -> tuple[nn.Module, dict]:
        return model, load_checkpoint(model, path)

    def save(value: tuple[nn.Module, dict], path: Path) -> None:
        trained, summary = value
        torch_save({"state_dict": {k: v.cpu() for k, v in trained.state_dict().items()}, "summary": summary}, path)

    models = store(cache_dir, "models", cache_cfg)
    about = f"{cfg.network.get('_target_', '?').rsplit('.', 1)[-1]} on {dataset_cfg.get('_target_', '?').rsplit('.', 1)[-1]}, seed {seed}"
    (trained, summary), hit = models.fetch(key, compute, load, save, about=about)
    return TrainedModel(trained.eval(), key=key, cached=hit, summary=summary, source="cached" if hit else "trained")
