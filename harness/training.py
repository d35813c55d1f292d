"""Trained models: build from config, take published or saved weights, or train on the fly and cache on disk.

``model.weights`` decides where the weights come from:

* ``null`` (or ``none``): trained here with ``model.training`` (optimiser Adam,
  AdamW or SGD with momentum; epochs; batch size; learning rate; weight decay; and
  batched, seeded augmentation: random horizontal flips and random translations by
  up to ``max_shift`` pixels with padding at the dataset mean, i.e. zero in
  normalised space), then cached.
* ``DEFAULT``: torchvision's published weights (:mod:`harness.torchvision_models`),
  read from the local torch hub cache, never downloaded unless ``model.download``
  is true. If the dataset's classes differ from the weights' (ImageNet's 1000), the
  head is re-initialised from the seed and the whole network fine-tuned with
  ``model.training`` (cached like a model trained here).
* a path: a checkpoint (a state dict, or ``{"state_dict": ...}``), loaded with
  ``weights_only=True``.

Every weights source is checked (files exist, channels fit) by :func:`build_network`,
which pre-flight calls, so a missing file stops the command before any work.

The cache key is a SHA-256 of everything that determines the weights: the network
and training configs (optimiser and augmentation included), the weights source, the
dataset config, the seed and :data:`TRAINING_VERSION` (bump it when this file's
training procedure changes). A cache file holds the state dict and the training
summary; it is written to a temporary file and renamed into place, so a reader never
sees half a file, and two processes training the same model produce the same bytes.
A file that fails to load (truncated, corrupt, or from another architecture) is
reported, retrained and replaced, never used.

The summary (logged by the runner) holds train and test accuracy and, for datasets
with groups, the accuracy of every (class, environment) group and the worst-group
accuracy (Sagawa et al., ICLR 2020); for datasets with background-swapped test
variants, the accuracy on each variant (``test_accuracy/<variant>``) and the BG-gap
(``test_accuracy/bg_gap``), accuracy on
``same_class_background`` minus accuracy on ``other_class_background`` (Xiao et al.,
ICLR 2021, "Noise or signal").
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import get_object
from omegaconf import DictConfig
from torch import nn

from harness import progress, torchvision_models
from harness.build import ConfigError, build, plain
from harness.cache import content_key, store as cache_store, target_fingerprint
from harness.data import ImageDataset, ImageSplit

TRAINING_VERSION = 2
OPTIMIZERS = ("adam", "adamw", "sgd")
log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    model: nn.Module
    key: str
    cached: bool
    summary: dict[str, float] = field(default_factory=dict)


def weights_source(cfg: DictConfig) -> str | None:
    """``None`` (train here), ``"DEFAULT"`` (published) or a checkpoint path, from ``model.weights``."""
    weights = cfg.get("weights")
    if weights is None or str(weights).lower() == "none":
        return None
    return "DEFAULT" if str(weights) == "DEFAULT" else str(weights)


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
    aug = t.get("augmentation") or {}
    unknown = set(aug) - {"horizontal_flip", "max_shift"}
    if unknown:
        raise ConfigError(f"model.training.augmentation has unknown key {sorted(unknown)[0]!r}; allowed: horizontal_flip, max_shift")
    if not isinstance(aug.get("max_shift", 0), int) or aug.get("max_shift", 0) < 0:
        raise ConfigError(f"model.training.augmentation.max_shift must be a non-negative number of pixels; got {aug.get('max_shift')!r}")
    if not isinstance(aug.get("horizontal_flip", False), bool):
        raise ConfigError(f"model.training.augmentation.horizontal_flip must be true or false; got {aug.get('horizontal_flip')!r}")


def check_weights(cfg: DictConfig, dataset: ImageDataset) -> None:
    """Stop, in one line, when ``model.weights`` names weights that are absent or cannot fit the data."""
    source = weights_source(cfg)
    if source is None:
        return
    if source != "DEFAULT":
        path = Path(source).expanduser()
        if not path.is_file():
            raise ConfigError(f"model.weights: no checkpoint file at {path}; give a path to a saved state dict, DEFAULT for torchvision's published weights, or null to train here")
        return
    target = str(cfg.network.get("_target_"))
    if target != torchvision_models.TARGET:
        raise ConfigError(f"model.weights=DEFAULT: only torchvision networks ({', '.join(torchvision_models.ARCHITECTURES)}) have published weights; "
                          f"{target} has none; use weights=null to train here or a checkpoint path")
    architecture = str(cfg.network.architecture)
    if architecture not in torchvision_models.ARCHITECTURES:
        return  # the network build reports the allowed architectures
    if dataset.channels != 3:
        raise ConfigError(f"model.weights=DEFAULT: the published {architecture} weights take RGB input; the dataset has {dataset.channels} channel(s)")
    path = torchvision_models.published_file(architecture)
    if not path.is_file() and not cfg.get("download", False):
        raise ConfigError(f"model.weights=DEFAULT: torchvision's {architecture} weights are not in the local torch cache; "
                          f"expected {path} (copy the file there, set TORCH_HOME, or set model.download=true to allow a download)")


def build_network(cfg: DictConfig, dataset: ImageDataset) -> nn.Module:
    """The network of ``cfg`` for ``dataset``'s channels and classes (and image size, for networks that take one)."""
    check_weights(cfg, dataset)
    sizes = {"in_channels": dataset.channels, "num_classes": dataset.num_classes}
    try:
        if "image_size" in inspect.signature(get_object(str(cfg.network.get("_target_")))).parameters:
            sizes["image_size"] = dataset.image_size
    except Exception:  # noqa: BLE001 - an unknown _target_ is reported by build, in one line
        pass
    return build(cfg.network, "model.network", **sizes)


def cache_key(model_cfg: DictConfig, dataset_cfg: DictConfig, seed: int) -> str:
    """Hash of everything that determines the weights, including the network's and the dataset's code."""
    source = weights_source(model_cfg)
    identity = {
        "network": plain(model_cfg.network),
        "training": plain(model_cfg.training),
        "weights": None if source is None else f"DEFAULT:{torchvision_models.published_file(str(model_cfg.network.architecture)).name}",
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


def summarise(model: nn.Module, train: ImageSplit, test: ImageSplit, device: torch.device,
              dataset: ImageDataset | None = None) -> dict[str, float]:
    summary = {"train_accuracy": float(accuracy(model, train, device).float().mean())}
    correct = accuracy(model, test, device)
    summary["test_accuracy"] = float(correct.float().mean())
    if test.groups is not None:
        classes = getattr(dataset, "class_names", None)
        groups = getattr(dataset, "group_names", None)
        worst = 1.0
        for c, g in torch.stack([test.labels, test.groups], 1).unique(dim=0).tolist():
            acc = float(correct[(test.labels == c) & (test.groups == g)].float().mean())
            name_c = classes[c] if classes else str(c)
            name_g = groups[g] if groups else str(g)
            summary[f"group_accuracy/{name_c}_on_{name_g}"] = acc
            worst = min(worst, acc)
        summary["worst_group_accuracy"] = worst
    for variant in getattr(dataset, "VARIANTS", ("original",)):
        if variant != "original":
            summary[f"test_accuracy/{variant}"] = float(accuracy(model, dataset.split("test", variant), device).float().mean())
    if "test_accuracy/same_class_background" in summary and "test_accuracy/other_class_background" in summary:  # model-level BG-gap
        summary["test_accuracy/bg_gap"] = summary["test_accuracy/same_class_background"] - summary["test_accuracy/other_class_background"]
    return summary


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


def train(model: nn.Module, data: ImageSplit, cfg: DictConfig, seed: int, device: torch.device) -> None:
    t = cfg.training
    gen = torch.Generator().manual_seed(seed)
    flip, max_shift = augmentation(cfg)
    opt = optimiser(model, t)
    model.train()
    for epoch in progress.bar(range(t.epochs), desc="training", unit="epoch"):
        order = torch.randperm(len(data), generator=gen)
        total = 0.0
        for idx in order.split(t.batch_size):
            x, y = data.images[idx].to(device), data.labels[idx].to(device)
            x = augment(x, flip, max_shift, gen)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        log.info("epoch %d/%d: loss %.4f", epoch + 1, t.epochs, total / len(data))
    model.eval()


def load_published(cfg: DictConfig, model: nn.Module) -> bool:
    """Load the DEFAULT weights into ``model``; False when the head did not fit (it keeps its fresh initialisation)."""
    state = torchvision_models.load_published(str(cfg.network.architecture), bool(cfg.get("download", False)))
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fitting, strict=False)
    missing = sorted(set(own) - set(fitting))
    if missing:
        log.info("published weights: %d tensors do not fit this dataset and are trained here: %s", len(missing), ", ".join(missing))
    return not missing


def load_checkpoint(model: nn.Module, path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["state_dict"] if "state_dict" in state else state)
    return state.get("summary", {}) if isinstance(state, dict) else {}


def trained_model(
    cfg: DictConfig, dataset_cfg: DictConfig, dataset: ImageDataset, train_split: ImageSplit, test_split: ImageSplit,
    seed: int, cache_dir: Path, device: torch.device, cache_cfg: DictConfig | None = None,
) -> TrainedModel:
    """The model of ``cfg``: published weights, a checkpoint, the cache, or trained (or fine-tuned) and cached."""
    source = weights_source(cfg)
    model = build_network(cfg, dataset).to(device)
    if source is not None and source != "DEFAULT":
        path = Path(source).expanduser()
        load_checkpoint(model, path)
        return TrainedModel(model.eval(), key=f"file:{path}", cached=True, summary=summarise(model, train_split, test_split, device, dataset))
    if source == "DEFAULT":
        torch.manual_seed(seed)
        model = build_network(cfg, dataset)
        if load_published(cfg, model):  # the published head fits: use the weights as they are
            model = model.to(device).eval()
            return TrainedModel(model, key=f"published:{cfg.network.architecture}", cached=True,
                                summary=summarise(model, train_split, test_split, device, dataset))

    key = cache_key(cfg, dataset_cfg, seed)

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
        torch.save({"state_dict": {k: v.cpu() for k, v in trained.state_dict().items()}, "summary": summary}, path)

    models = cache_store(cache_dir, "models", cache_cfg)
    about = f"{cfg.network.get('_target_', '?').rsplit('.', 1)[-1]} on {dataset_cfg.get('_target_', '?').rsplit('.', 1)[-1]}, seed {seed}"
    (trained, summary), hit = models.fetch(key, compute, load, save, about=about)
    return TrainedModel(trained.eval(), key=key, cached=hit, summary=summary)
