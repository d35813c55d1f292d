"""What a trained model does on the data: accuracies beside the attribution metrics.

:func:`summarise` gives train and test accuracy and, for datasets with groups, the
accuracy of every (class, environment) group and the worst-group accuracy (Sagawa et
al., ICLR 2020); for datasets with background-swapped test variants, the accuracy on
each variant (``test_accuracy/<variant>``) and the model-level BG-gap
(``test_accuracy/bg_gap``, Xiao et al., ICLR 2021), computed by the same definition
as the ``background_gap`` metric (:func:`metrics.background_gap.background_gap`).
"""
from __future__ import annotations

import torch
from torch import nn

from harness.datasets import Dataset, ImageSplit, LazySplit, Streams, batches
from metrics.background_gap import OTHER, SAME, background_gap

LAZY_BATCH = 64


def accuracy(model: nn.Module, data: ImageSplit | LazySplit, device: torch.device, batch_size: int = 256) -> torch.Tensor:
    """Per-sample correctness (N,) bool of ``model`` on ``data`` (a lazy split is made one batch of at most
    :data:`LAZY_BATCH` at a time: making a batch takes a few times its size in scratch memory)."""
    model.eval()
    size = batch_size if isinstance(data, ImageSplit) else min(batch_size, LAZY_BATCH)
    with torch.no_grad():
        preds = [model(batch.images.to(device)).argmax(1).cpu() for batch in batches(data, size)]
    return torch.cat(preds) == data.labels


def summarise(model: nn.Module, train: ImageSplit, test: ImageSplit | LazySplit, device: torch.device,
              dataset: Dataset | None = None) -> dict[str, float]:
    """Accuracies of ``model``: train, test, per group and worst group, per test variant, and the BG-gap."""
    summary = {"train_accuracy": float(accuracy(model, train, device).float().mean())}
    correct = accuracy(model, test, device)
    summary["test_accuracy"] = float(correct.float().mean())
    if test.groups is not None:
        classes = dataset.class_names if dataset is not None else None
        groups = dataset.group_names if dataset is not None else None
        worst = 1.0
        for c, g in torch.stack([test.labels, test.groups], 1).unique(dim=0).tolist():
            acc = float(correct[(test.labels == c) & (test.groups == g)].float().mean())
            name_c = classes[c] if classes else str(c)
            name_g = groups[g] if groups else str(g)
            summary[f"group_accuracy/{name_c}_on_{name_g}"] = acc
            worst = min(worst, acc)
        summary["worst_group_accuracy"] = worst
    by_variant = {}
    for variant in dataset.VARIANTS if dataset is not None else ():
        if variant != "original":
            view = dataset.view("test", variant) if isinstance(dataset, Streams) else dataset.split("test", variant)
            by_variant[variant] = accuracy(model, view, device)
            summary[f"test_accuracy/{variant}"] = float(by_variant[variant].float().mean())
    if SAME in by_variant and OTHER in by_variant:  # the model-level BG-gap
        summary["test_accuracy/bg_gap"] = float(background_gap(by_variant[SAME], by_variant[OTHER]).mean())
    return summary
