"""The network of a model config, sized for a dataset: the one place a ``model.network`` node is built."""
from __future__ import annotations

import inspect
from pathlib import Path

from hydra.utils import get_object
from omegaconf import DictConfig
from torch import nn

from harness.build import build
from harness.datasets import Dataset
from harness.models.weights import check_weights, load_checkpoint, weights_source


def build_network(cfg: DictConfig, dataset: Dataset) -> nn.Module:
    """The network of ``cfg`` for ``dataset``'s channels and classes (and image size, for networks that take one).

    Checks the weights source first (:func:`harness.models.weights.check_weights`), so pre-flight,
    which calls this, stops on absent weights before any work; a checkpoint is loaded into the
    network here too, so one that does not fit stops it in one line
    (:func:`harness.models.weights.load_checkpoint`).
    """
    check_weights(cfg, dataset)
    sizes = {"in_channels": dataset.channels, "num_classes": dataset.num_classes}
    try:
        if "image_size" in inspect.signature(get_object(str(cfg.network.get("_target_")))).parameters:
            sizes["image_size"] = dataset.image_size
    except Exception:  # noqa: BLE001 - an unknown _target_ is reported by build, in one line
        pass
    network = build(cfg.network, "model.network", **sizes)
    source = weights_source(cfg)
    if source is not None and source != "DEFAULT":  # pre-flight: a checkpoint that does not fit fails here, in one line
        load_checkpoint(network, Path(source).expanduser(), str(cfg.get("target") or cfg.network.get("_target_")))
    return network
