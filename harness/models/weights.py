"""Where a model's weights come from: trained here, torchvision's published weights, or a checkpoint.

``model.weights`` decides:

* ``null`` (or ``none``): trained here with ``model.training`` (:mod:`harness.training`), then cached;
* ``DEFAULT``: torchvision's published weights, read from the local torch hub cache,
  ``torch.hub.get_dir()/checkpoints/<file name of the weights URL>``, exactly where
  ``torchvision`` itself would store them; nothing is downloaded unless the model
  config sets ``download: true``. Tensors that do not fit the dataset (a head for
  another number of classes) keep their fresh, seeded initialisation and are trained;
* a path: a checkpoint (a state dict, or ``{"state_dict": ...}``), loaded with ``weights_only=True``.

:func:`check_weights` (called by pre-flight through :func:`harness.models.build_network`)
stops a command in one line when the weights are absent or cannot fit the data.
"""
from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from urllib.parse import urlparse

import torch
from hydra.utils import get_object
from omegaconf import DictConfig
from torch import nn

from harness.build import ConfigError
from harness.datasets import Dataset
from harness.models.torchvision_models import ARCHITECTURES, torchvision_network

log = logging.getLogger(__name__)


def weights_source(cfg: DictConfig) -> str | None:
    """``None`` (train here), ``"DEFAULT"`` (published) or a checkpoint path, from ``model.weights``."""
    weights = cfg.get("weights")
    if weights is None or str(weights).lower() == "none":
        return None
    return "DEFAULT" if str(weights) == "DEFAULT" else str(weights)


def published_weights(architecture: str):
    """Torchvision's DEFAULT weights enum member of ``architecture`` (offline: a Python object, no file access)."""
    import torchvision

    return torchvision.models.get_model_weights(architecture).DEFAULT


def published_file(architecture: str) -> Path:
    """Where torchvision keeps (or would download) the DEFAULT weights of ``architecture``."""
    name = os.path.basename(urlparse(published_weights(architecture).url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def published_state(architecture: str, download: bool = False) -> dict[str, torch.Tensor]:
    """The DEFAULT state dict, from the local hub cache (or downloaded into it when ``download``)."""
    path = published_file(architecture)
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    if not download:
        raise FileNotFoundError(f"no published weights for {architecture} at {path}")
    return published_weights(architecture).get_state_dict(progress=False)


def _is_torchvision(cfg: DictConfig) -> bool:
    try:
        return get_object(str(cfg.network.get("_target_"))) is torchvision_network
    except Exception:  # noqa: BLE001 - an unknown _target_ is reported by build, in one line
        return False


def check_weights(cfg: DictConfig, dataset: Dataset) -> None:
    """Stop, in one line, when ``model.weights`` names weights that are absent or cannot fit the data."""
    source = weights_source(cfg)
    if source is None:
        return
    if source != "DEFAULT":
        path = Path(source).expanduser()
        if not path.is_file():
            raise ConfigError(f"model.weights: no checkpoint file at {path}; give a path to a saved state dict, "
                              "DEFAULT for torchvision's published weights, or null to train here")
        return
    if not _is_torchvision(cfg):
        raise ConfigError(f"model.weights=DEFAULT: only torchvision networks ({', '.join(ARCHITECTURES)}) have published weights; "
                          f"{cfg.network.get('_target_')} has none; use weights=null to train here or a checkpoint path")
    architecture = str(cfg.network.architecture)
    if architecture not in ARCHITECTURES:
        return  # the network build reports the allowed architectures
    if dataset.channels != 3:
        raise ConfigError(f"model.weights=DEFAULT: the published {architecture} weights take RGB input; the dataset has {dataset.channels} channel(s)")
    path = published_file(architecture)
    if not path.is_file() and not cfg.get("download", False):
        raise ConfigError(f"model.weights=DEFAULT: torchvision's {architecture} weights are not in the local torch cache; "
                          f"expected {path} (copy the file there, set TORCH_HOME, or set model.download=true to allow a download)")


def load_published(cfg: DictConfig, model: nn.Module) -> bool:
    """Load the DEFAULT weights into ``model``; False when the head did not fit (it keeps its fresh initialisation)."""
    state = published_state(str(cfg.network.architecture), bool(cfg.get("download", False)))
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fitting, strict=False)
    missing = sorted(set(own) - set(fitting))
    if missing:
        log.info("published weights: %d tensors do not fit this dataset and are trained here: %s", len(missing), ", ".join(missing))
    return not missing


def load_checkpoint(model: nn.Module, path: Path, target: str | None = None) -> dict:
    """Load a checkpoint (a state dict or ``{"state_dict": ..., "summary": ...}``) into ``model``; its summary.

    Read with ``weights_only=True`` (tensors and plain containers, never arbitrary
    objects); anything else (text, a pickle of other objects, wrong keys, another
    architecture) is a one-line :class:`ConfigError` naming the file, what does not
    fit (``target`` names the network in it; default: the model's class) and what it should be.
    """
    allowed = "a state dict saved with torch.save(model.state_dict(), path) for this network"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch's own text would advise weights_only=False: never repeat that advice
        kind = "holds Python objects other than tensors" if isinstance(error, pickle.UnpicklingError) else "is not a PyTorch checkpoint"
        raise ConfigError(f"model.weights: {path} {kind} ({type(error).__name__}); allowed: {allowed}") from None
    weights = state.get("state_dict", state) if isinstance(state, dict) else None
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ConfigError(f"model.weights: {path} holds a {type(state).__name__}, not a state dict of tensors; allowed: {allowed}")
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
    shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in weights and own[k].shape != weights[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{label}: {', '.join(names[:4])}{' ...' if len(names) > 4 else ''}" for label, names in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("shape checkpoint vs network", shapes)) if names]
        raise ConfigError(f"model.weights: {path} does not fit {target or 'this ' + type(model).__name__} ({'; '.join(parts)}); "
                          f"it is from another architecture, dataset or model.kwargs; allowed: {allowed}")
    model.load_state_dict(weights)
    summary = state.get("summary", {}) if "state_dict" in state else {}
    return summary if isinstance(summary, dict) else {}
