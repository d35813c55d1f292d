"""The training loop: the optimiser, seeded batched augmentation, and the epochs.

``model.training`` sets the optimiser (Adam, AdamW, or SGD with momentum), epochs,
batch size, learning rate and weight decay, and the augmentation: random horizontal
flips and random translations by up to ``max_shift`` pixels, padded with the dataset
mean (zero in normalised space). Every random draw comes from one generator seeded
with the run's seed, so the same config trains the same weights.

``random_labels: true`` trains on a seeded random permutation of the training labels (the
same class counts, no relation to the images): the model of the data randomisation test of
Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, "Sanity checks for saliency maps", NeurIPS
2018, whose maps should differ from those of the model trained on the true labels. The
permutation is drawn from the run's generator before the first epoch (so ``false`` trains
exactly as before); the switch is part of the model's cache key (``model.training``). Its test
accuracy, scored on the true labels, is at chance by design.
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from harness import progress
from harness.build import ConfigError
from harness.datasets import ImageSplit

OPTIMIZERS = ("adam", "adamw", "sgd")
RANDOM_LABELS = False  # model.training.random_labels when a model YAML leaves it out (every conf/model file sets it to this)
log = logging.getLogger(__name__)


def augmentation(cfg: DictConfig) -> tuple[bool, int]:
    aug = cfg.training.get("augmentation") or {}
    return bool(aug.get("horizontal_flip", False)), int(aug.get("max_shift", 0))


def check_training(cfg: DictConfig) -> None:
    t = cfg.training
    if t.epochs < 0 or t.batch_size < 1 or t.lr <= 0 or t.weight_decay < 0:
        raise ConfigError(
            "model.training needs epochs >= 0, batch_size >= 1, lr > 0 and weight_decay >= 0; "
            f"got epochs={t.epochs}, batch_size={t.batch_size}, lr={t.lr}, weight_decay={t.weight_decay}"
        )
    optimizer = t.get("optimizer", "adam")
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"model.training.optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")
    if not 0 <= t.get("momentum", 0.9) < 1:
        raise ConfigError(f"model.training.momentum must be in [0, 1); got {t.momentum}")
    if not isinstance(t.get("random_labels", RANDOM_LABELS), bool):
        raise ConfigError(f"model.training.random_labels must be true or false; got {t.get('random_labels')!r}")
    aug = t.get("augmentation") or {}
    unknown = set(aug) - {"horizontal_flip", "max_shift"}
    if unknown:
        raise ConfigError(f"model.training.augmentation has unknown key {sorted(unknown)[0]!r}; allowed: horizontal_flip, max_shift")
    if not isinstance(aug.get("max_shift", 0), int) or aug.get("max_shift", 0) < 0:
        raise ConfigError(f"model.training.augmentation.max_shift must be a non-negative number of pixels; got {aug.get('max_shift')!r}")
    if not isinstance(aug.get("horizontal_flip", False), bool):
        raise ConfigError(f"model.training.augmentation.horizontal_flip must be true or false; got {aug.get('horizontal_flip')!r}")


def augment(x: torch.Tensor, flip: bool, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and translations by up to ``max_shift`` pixels (zero padding), per sample."""
    n, _, h, w = x.shape
    if flip:
        flipped = (torch.rand(n, generator=gen) < 0.5).to(x.device).view(n, 1, 1, 1)
        x = torch.where(flipped, x.flip(-1), x)
    if max_shift > 0:
        m = max_shift
        padded = F.pad(x, (m, m, m, m))
        oy, ox = torch.randint(0, 2 * m + 1, (2, n), generator=gen).to(x.device)
        rows = (oy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
        cols = (ox.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w)
        x = padded.gather(2, rows.expand(n, x.shape[1], h, padded.shape[3])).gather(3, cols.expand(n, x.shape[1], h, w))
    return x


def optimiser(model: nn.Module, t: DictConfig) -> torch.optim.Optimizer:
    name = t.get("optimizer", "adam")
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.get("momentum", 0.9), weight_decay=t.weight_decay)
    kind = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    return kind(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)


def training_labels(labels: torch.Tensor, cfg: DictConfig, gen: torch.Generator) -> torch.Tensor:
    """The labels trained on: ``labels``, or with ``training.random_labels`` a permutation of them drawn from ``gen``."""
    if not cfg.training.get("random_labels", RANDOM_LABELS):
        return labels
    return labels[torch.randperm(len(labels), generator=gen)]


def train(model: nn.Module, data: ImageSplit, cfg: DictConfig, seed: int, device: torch.device) -> None:
    t = cfg.training
    gen = torch.Generator().manual_seed(seed)
    labels = training_labels(data.labels, cfg, gen)
    flip, max_shift = augmentation(cfg)
    opt = optimiser(model, t)
    model.train()
    for epoch in progress.bar(range(t.epochs), desc="training", unit="epoch"):
        order = torch.randperm(len(data), generator=gen)
        total = 0.0
        for idx in order.split(t.batch_size):
            x, y = data.images[idx].to(device), labels[idx].to(device)
            x = augment(x, flip, max_shift, gen)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        log.info("epoch %d/%d: loss %.4f", epoch + 1, t.epochs, total / len(data))
    model.eval()
