"""Trained models: build from config, train on the fly, cache on disk.

The cache key is a SHA-256 of everything that determines the weights: the network
and training configs, the dataset config, the seed and :data:`TRAINING_VERSION`
(bump it when this file's training procedure changes). A cache file holds the state
dict and the training summary; it is written to a temporary file and renamed into
place, so a reader never sees half a file, and two processes training the same model
produce the same bytes. A file that fails to load (truncated, corrupt, or from
another architecture) is reported, retrained and replaced, never used.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from harness.build import ConfigError, build, plain
from harness.cache import content_key, store as cache_store, target_fingerprint
from harness.data import ImageDataset, ImageSplit

TRAINING_VERSION = 1
log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    model: nn.Module
    key: str
    cached: bool
    summary: dict[str, float] = field(default_factory=dict)


def check_training(cfg: DictConfig) -> None:
    t = cfg.training
    if t.epochs < 0 or t.batch_size < 1 or t.lr <= 0 or t.weight_decay < 0:
        raise ConfigError(
            "model.training needs epochs >= 0, batch_size >= 1, lr > 0 and weight_decay >= 0; "
            f"got epochs={t.epochs}, batch_size={t.batch_size}, lr={t.lr}, weight_decay={t.weight_decay}"
        )


def build_network(cfg: DictConfig, dataset: ImageDataset) -> nn.Module:
    return build(cfg.network, "model.network", in_channels=dataset.channels, num_classes=dataset.num_classes)


def cache_key(model_cfg: DictConfig, dataset_cfg: DictConfig, seed: int) -> str:
    """Hash of everything that determines the weights, including the network's and the dataset's code."""
    identity = {
        "network": plain(model_cfg.network),
        "training": plain(model_cfg.training),
        "dataset": plain(dataset_cfg),
        "seed": seed,
        "version": TRAINING_VERSION,
        "code": [target_fingerprint(model_cfg.network), target_fingerprint(dataset_cfg)],
    }
    return content_key(identity)


def accuracy(model: nn.Module, data: ImageSplit, device: torch.device, batch_size: int = 256) -> torch.Tensor:
    """Per-sample correctness (N,) bool of ``model`` on ``data``."""
    model.eval()
    with torch.no_grad():
        preds = [model(x.to(device)).argmax(1).cpu() for x in data.images.split(batch_size)]
    return torch.cat(preds) == data.labels


def summarise(model: nn.Module, train: ImageSplit, test: ImageSplit, device: torch.device) -> dict[str, float]:
    summary = {"train_accuracy": float(accuracy(model, train, device).float().mean())}
    correct = accuracy(model, test, device)
    summary["test_accuracy"] = float(correct.float().mean())
    if test.groups is not None:
        group_acc = [correct[test.groups == g].float().mean() for g in test.groups.unique()]
        summary["worst_group_accuracy"] = float(torch.stack(group_acc).min())
    return summary


def train(model: nn.Module, data: ImageSplit, cfg: DictConfig, seed: int, device: torch.device) -> None:
    t = cfg.training
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    model.train()
    for epoch in range(t.epochs):
        order = torch.randperm(len(data), generator=gen)
        total = 0.0
        for idx in order.split(t.batch_size):
            x, y = data.images[idx].to(device), data.labels[idx].to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        log.info("epoch %d/%d: loss %.4f", epoch + 1, t.epochs, total / len(data))
    model.eval()


def load_checkpoint(model: nn.Module, path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["state_dict"] if "state_dict" in state else state)
    return state.get("summary", {}) if isinstance(state, dict) else {}


def trained_model(
    cfg: DictConfig, dataset_cfg: DictConfig, dataset: ImageDataset, train_split: ImageSplit, test_split: ImageSplit,
    seed: int, cache_dir: Path, device: torch.device, cache_cfg: DictConfig | None = None,
) -> TrainedModel:
    """The model of ``cfg``: loaded from ``cfg.weights``, from the cache, or trained and cached."""
    model = build_network(cfg, dataset).to(device)
    if cfg.weights is not None:
        path = Path(str(cfg.weights)).expanduser()
        if not path.is_file():
            raise ConfigError(f"model.weights: no checkpoint file at {path}; give a path to a saved state dict or null to train here")
        load_checkpoint(model, path)
        return TrainedModel(model.eval(), key=f"file:{path}", cached=True, summary=summarise(model, train_split, test_split, device))

    key = cache_key(cfg, dataset_cfg, seed)

    def compute() -> tuple[nn.Module, dict]:
        torch.manual_seed(seed)
        fresh = build_network(cfg, dataset).to(device)  # initial weights from the seed alone
        train(fresh, train_split, cfg, seed, device)
        return fresh, summarise(fresh, train_split, test_split, device)

    def load(path: Path) -> tuple[nn.Module, dict]:
        return model, load_checkpoint(model, path)

    def save(value: tuple[nn.Module, dict], path: Path) -> None:
        trained, summary = value
        torch.save({"state_dict": {k: v.cpu() for k, v in trained.state_dict().items()}, "summary": summary}, path)

    models = cache_store(cache_dir, "models", cache_cfg)
    about = f"{cfg.network.get('_target_', '?').rsplit('.', 1)[-1]} on {dataset_cfg.get('_target_', '?').rsplit('.', 1)[-1]}, seed {seed}"
    (trained, summary), hit = models.fetch(key, compute, load, save, about=about)
    return TrainedModel(trained.eval(), key=key, cached=hit, summary=summary)
