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

Monitored training, off by default (the keys are absent from the model YAMLs, so every model trains
exactly as before; the ``roar`` experiment turns them on, for the unmodified and the retrained models alike):

* ``validation_fraction`` (float in [0, 1), default 0.0): hold out this fraction of the training split,
  drawn from a generator of its own seeded by the run's seed (so the same images for every model of a
  seed, e.g. every ROAR retraining), train on the rest and, after every epoch, measure the loss and
  accuracy on the held-out images; the model returned is the one of the epoch with the lowest
  validation loss (best-epoch selection; the test split plays no part). With validation, a model that
  predicts one class for at least 95 % of the held-out images at the end is warned about (the
  training did not leave the chance plateau, or its images carry no class), never silently replaced.
* ``patience`` (int >= 1 or null, default null): with validation, stop once this many epochs in a row
  have not lowered the best validation loss (early stopping); null runs every epoch.
* ``init`` (``default`` or ``kaiming``, default ``default``): ``kaiming`` re-draws every conv and linear
  weight from He et al.'s normal (fan-in, ReLU gain; "Delving deep into rectifiers", ICCV 2015) and sets
  the biases to zero, from a generator seeded by the run's seed, before the first epoch. PyTorch's layer
  default (uniform, a third of that variance) shrinks the signal through the five ReLU layers of
  ``SmallCNN``; on images with half their pixels removed (ROAR) it was seen to sit at loss ln C for five
  to fifteen epochs, and ``kaiming`` left that plateau in the first epoch.

:func:`train` returns what happened (epochs run, best epoch, final training loss and, with
validation, the best validation loss and accuracy) and logs it.
"""
from __future__ import annotations

import logging
import math
import warnings

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from harness import progress
from harness.build import ConfigError
from harness.datasets import ImageSplit

OPTIMIZERS = ("adam", "adamw", "sgd")
RANDOM_LABELS = False  # model.training.random_labels when a model YAML leaves it out (every conf/model file sets it to this)
VALIDATION_FRACTION = 0.0  # model.training.validation_fraction when absent: no held-out images, the last epoch's model
PATIENCE = None            # model.training.patience when absent: every epoch runs
INIT = "default"           # model.training.init when absent: the layers' own initialisation
INITS = ("default", "kaiming")
VALIDATION_STREAM = 0x5A11D   # added to the seed: the validation split's generator, apart from the training draws
ONE_CLASS_SHARE = 0.95        # a validated model predicting one class this often is warned about
log = logging.getLogger(__name__)


def augmentation(cfg: DictConfig) -> tuple[bool, int]:
    aug = cfg.training.get("augmentation") or {}
    return bool(aug.get("horizontal_flip", False)), int(aug.get("max_shift", 0))


def check_training(cfg: DictConfig, n_train: int | None = None) -> None:
    """Refuse bad ``model.training`` settings in one line; ``n_train`` (the training split's size, when known
    before any image is made) also checks that ``validation_fraction`` leaves images on each side."""
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
    held = t.get("validation_fraction", VALIDATION_FRACTION)
    if isinstance(held, bool) or not isinstance(held, int | float) or not 0 <= held < 1:
        raise ConfigError(f"model.training.validation_fraction must be a number in [0, 1); got {held!r}")
    patience = t.get("patience", PATIENCE)
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise ConfigError(f"model.training.patience must be a positive integer or null; got {patience!r}")
    if patience is not None and held == 0:
        raise ConfigError("model.training.patience needs held-out images: set model.training.validation_fraction in (0, 1)")
    if n_train is not None and held:
        held_out(n_train, float(held))
    if t.get("init", INIT) not in INITS:
        raise ConfigError(f"model.training.init must be one of {', '.join(INITS)}; got {t.get('init')!r}")
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


def kaiming_init(model: nn.Module, seed: int) -> None:
    """Every conv and linear weight re-drawn from He et al.'s normal (fan-in, ReLU), biases zero; from ``seed`` alone."""
    gen = torch.Generator().manual_seed(seed)
    for layer in model.modules():
        if isinstance(layer, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear):
            with torch.no_grad():
                weight = torch.empty(layer.weight.shape)
                nn.init.kaiming_normal_(weight, nonlinearity="relu", generator=gen)
                layer.weight.copy_(weight)
                if layer.bias is not None:
                    layer.bias.zero_()


def held_out(n: int, fraction: float) -> int:
    """How many of ``n`` training images ``fraction`` holds out (an error in one line unless both sides keep one)."""
    held = round(fraction * n)
    if not 1 <= held < n:
        raise ConfigError(f"model.training.validation_fraction={fraction} holds out {held} of {n} training images; "
                          "it must leave at least one image on each side")
    return held


def validation_split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(fit, held-out) indices of ``n`` training images: ``round(fraction * n)`` held out, drawn from the seed; (None, None) at 0."""
    if fraction == 0:
        return None, None
    held = held_out(n, fraction)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + VALIDATION_STREAM))
    return order[held:].sort().values, order[:held].sort().values


@torch.no_grad()
def validate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
             device: torch.device) -> tuple[float, float, float]:
    """Mean cross-entropy, accuracy and the largest share of one predicted class on the held-out images (eval mode)."""
    model.eval()
    loss, predicted = 0.0, []
    for start in range(0, len(labels), batch_size):
        x, y = images[start:start + batch_size].to(device), labels[start:start + batch_size].to(device)
        logits = model(x)
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        predicted.append(logits.argmax(1).cpu())
    model.train()
    predicted = torch.cat(predicted)
    return loss / len(labels), float((predicted == labels).float().mean()), float(torch.bincount(predicted).max()) / len(labels)


def train(model: nn.Module, data: ImageSplit, cfg: DictConfig, seed: int, device: torch.device) -> dict[str, float]:
    """Train ``model`` in place (module docstring); returns what happened: epochs run, best epoch, losses."""
    t = cfg.training
    if t.get("init", INIT) == "kaiming":
        kaiming_init(model, seed)
    gen = torch.Generator().manual_seed(seed)
    labels = training_labels(data.labels, cfg, gen)
    fit, held = validation_split(len(data), float(t.get("validation_fraction", VALIDATION_FRACTION)), seed)
    patience = t.get("patience", PATIENCE)
    flip, max_shift = augmentation(cfg)
    opt = optimiser(model, t)
    model.train()
    n_fit = len(data) if fit is None else len(fit)
    held_images, held_labels = (None, None) if held is None else (data.images[held], labels[held])
    best: dict = {}
    history = {"epochs_run": 0.0, "best_epoch": float(t.epochs), "train_loss": float("nan")}
    for epoch in progress.bar(range(t.epochs), desc="training", unit="epoch"):
        order = torch.randperm(n_fit, generator=gen)
        if fit is not None:
            order = fit[order]
        total = 0.0
        for idx in order.split(t.batch_size):
            x, y = data.images[idx].to(device), labels[idx].to(device)
            x = augment(x, flip, max_shift, gen)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        history.update(epochs_run=float(epoch + 1), train_loss=total / n_fit)
        if held is None:
            log.info("epoch %d/%d: loss %.4f", epoch + 1, t.epochs, total / n_fit)
            continue
        val_loss, val_accuracy, one_class = validate(model, held_images, held_labels, t.batch_size, device)
        log.info("epoch %d/%d: loss %.4f, validation loss %.4f accuracy %.3f", epoch + 1, t.epochs, total / n_fit, val_loss, val_accuracy)
        if not best or val_loss < best["validation_loss"]:
            best = {"validation_loss": val_loss, "validation_accuracy": val_accuracy, "one_class": one_class, "epoch": epoch + 1,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        elif patience is not None and epoch + 1 - best["epoch"] >= patience:
            break
    if best:
        model.load_state_dict(best["state"])
        history.update(best_epoch=float(best["epoch"]), validation_loss=best["validation_loss"],
                       validation_accuracy=best["validation_accuracy"])
        log.info("kept epoch %d of %d run (validation loss %.4f, accuracy %.3f)", best["epoch"], int(history["epochs_run"]),
                 best["validation_loss"], best["validation_accuracy"])
        if best["one_class"] >= ONE_CLASS_SHARE and not t.get("random_labels", RANDOM_LABELS):
            classes = int(labels.max()) + 1
            warnings.warn(f"training: the kept model (epoch {best['epoch']}) predicts one class for {best['one_class']:.0%} of the "
                          f"held-out images (validation loss {best['validation_loss']:.3f}; chance ln {classes} = {math.log(classes):.3f}): "
                          "a failed training or images without class information, not a trained model (try model.training.init=kaiming, "
                          "a lower lr or more epochs)", stacklevel=2)
    model.eval()
    return history
