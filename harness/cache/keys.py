"""Cache keys and the run identity: the one place that says what determines a stored result.

Every key is 16 hex digits of a SHA-256 of canonical JSON (:func:`content_key`) of
exactly what determines the entry, including the code that computes it:
:func:`code_version` hashes every source file of the installed ``harness``, ``methods``
and ``metrics`` packages (and the ``conf`` tree) together with the versions of Python,
torch, torchvision and NumPy, once per process. Any edit to any of those files (a
helper such as ``methods/_hooks.py``, the ablation engine, the training loop), or
another torch, therefore invalidates every cache entry and every resume match. A
``_target_`` outside these packages (your own network or explainer class) adds the
hash of its own source file (:func:`target_fingerprint`). Keys chain: the attribution key contains the
model key, which contains the dataset config, so a new dataset invalidates its
models and their attributions.

* :func:`split_key`: a generated dataset split (dataset config, seed, split, generator code; for
  a dataset read from files such as ``image_folder``, every file's path, size and modification
  time: :func:`dataset_identity`, also part of the model and attribution keys);
* :func:`model_key`: trained weights (network, training and dataset configs, weights
  source, seed, :data:`TRAINING_VERSION`, network and dataset code); a checkpoint's key
  is ``file:<path>``; a model retrained on images with features removed (ROAR,
  :class:`harness.training.Retrainer`) adds the removal's identity (method config and
  code, the attribution model's key, the metric's settings such as the fraction t);
* :func:`attribution_key`: an explainer's maps (model key, dataset, method config and
  code, ``eval.target``, seed, device type, :data:`ATTRIBUTION_VERSION`; each stored batch adds its sample indices);
* :func:`config_hash`: a run's identity (tag ``harness.config_hash``; a resumed sweep
  skips a job whose hash has a FINISHED run): the config without where results are
  stored or how they are shown (:data:`NOT_RESULTS`).
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import json
import platform
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, open_dict

from harness.build import plain
from harness.datasets import ReadsFiles
from harness.models.weights import published_file, weights_source

TRAINING_VERSION = 2     # bump when harness.training changes how a model is trained
ATTRIBUTION_VERSION = 3  # bump when the runner changes how attributions are computed
# Config nodes that say where and how results are stored or shown, not what they are.
NOT_RESULTS = ("paths", "tracking", "cache", "sweep", "hydra")
NOT_RESULTS_EVAL = ("num_workers",)  # eval keys that change how fast, not what (prefetching keeps the order)
# Packages whose every source file is part of every key (:func:`code_version`).
CODE_PACKAGES = ("harness", "methods", "metrics", "conf")
LIBRARIES = ("torch", "torchvision", "numpy")  # they compute the numbers: part of every key


def source_hash(folders: list[Path]) -> str:
    """SHA-256 (16 hex digits) of every ``.py`` and ``.yaml`` file under ``folders``: relative path and bytes."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(p for p in Path(folder).rglob("*") if p.suffix in (".py", ".yaml") and p.is_file()):
            if "__pycache__" in path.parts:
                continue
            digest.update(f"{folder.name}/{path.relative_to(folder).as_posix()}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Versions of Python and of the numerical libraries that compute the results."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = str(importlib.import_module(name).__version__)
        except ImportError:
            versions[name] = "absent"
    return versions


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The hash of the code that computes results: our packages' sources and the library versions (once per process)."""
    folders = []
    for name in CODE_PACKAGES:
        module = importlib.import_module(name)
        folders += [Path(p) for p in getattr(module, "__path__", [])]
    return content_key({"sources": source_hash(folders), "libraries": library_versions()})


def content_key(identity: Any) -> str:
    """16 hex digits of the SHA-256 of ``identity`` as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def code_fingerprint(obj: Any) -> str:
    """A hash of the source file that defines ``obj``'s class (or ``obj`` itself if it is a class/function).

    Part of a key where the entry is computed by that code (a dataset generator, an
    explainer): editing the code then invalidates the entries it made.
    """
    target = obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj)
    try:
        source = Path(inspect.getsourcefile(target) or "").read_bytes()
    except (TypeError, OSError):
        return f"{target.__module__}.{target.__qualname__}"
    return hashlib.sha256(source).hexdigest()[:16]


def target_fingerprint(node: Any) -> str:
    """:func:`code_fingerprint` of the class or function a config node's ``_target_`` names."""
    target = str(node.get("_target_", "")) if isinstance(node, DictConfig | dict) else ""
    if not target:
        return ""
    try:
        from hydra.utils import get_object

        return code_fingerprint(get_object(target))
    except Exception:  # not importable here: the name still identifies it
        return target


def dataset_identity(dataset_cfg: DictConfig) -> dict:
    """What determines a dataset's images: its config and, for one read from files (:class:`harness.datasets.ReadsFiles`,
    e.g. ``image_folder``), the hash of every file's path, size and modification time."""
    identity = {"config": plain(dataset_cfg)}
    try:
        from hydra.utils import get_object

        target = get_object(str(dataset_cfg.get("_target_", "")))
    except Exception:  # noqa: BLE001 - not importable here: the config identifies it
        return identity
    if inspect.isclass(target) and isinstance(target, ReadsFiles):
        identity["files"] = content_key(target.file_identity(plain(dataset_cfg)))
    return identity


def split_key(dataset_cfg: DictConfig, seed: int, split: str) -> str:
    """Key of a generated (or read) dataset split."""
    return content_key({"dataset": dataset_identity(dataset_cfg), "seed": seed, "split": split, "code": target_fingerprint(dataset_cfg),
                        "code_version": code_version()})


def model_key(model_cfg: DictConfig, dataset_cfg: DictConfig, seed: int, removal: dict | None = None) -> str:
    """Key of a model's weights: ``file:<path>`` for a checkpoint, else a hash of everything that determines them.

    ``removal``: for a model retrained from scratch on training images with features removed
    (ROAR), what identifies the removal; the weights source then plays no part (nothing is loaded).
    """
    source = weights_source(model_cfg)
    if removal is not None:
        return content_key({"retrained": model_key(model_cfg if source is None else _untrained(model_cfg), dataset_cfg, seed),
                            "removal": removal})
    if source is not None and source != "DEFAULT":
        return f"file:{Path(source).expanduser()}"
    identity = {
        "network": plain(model_cfg.network),
        "training": plain(model_cfg.training),
        "weights": None if source is None else f"DEFAULT:{published_file(str(model_cfg.network.architecture)).name}",
        "dataset": dataset_identity(dataset_cfg),
        "seed": seed,
        "version": TRAINING_VERSION,
        "code": [target_fingerprint(model_cfg.network), target_fingerprint(dataset_cfg)],
        "code_version": code_version(),
    }
    return content_key(identity)


def _untrained(model_cfg: DictConfig) -> DictConfig:
    """``model_cfg`` without a weights source: the config of the same network trained from scratch here."""
    cfg = model_cfg.copy()
    with open_dict(cfg):
        cfg.pop("weights", None)
    return cfg


def attribution_key(cfg: DictConfig, model: str, device: torch.device) -> str:
    """Key of the attributions of run ``cfg`` on the model whose key is ``model``.

    A checkpoint's identity is its path with its size and modification time, so
    overwriting the file invalidates the maps computed from it. Which samples, and in which
    batches, is not part of it: each stored batch adds its sample indices
    (:func:`harness.cache.cached_attribution_batch`), so runs that differ in ``eval.n_samples``,
    ``eval.sample``, ``eval.batch_size`` or the sharding share the maps they have in common.
    """
    if model.startswith("file:"):
        stat = Path(model[5:]).stat()
        model += f":{stat.st_size}:{stat.st_mtime_ns}"
    return content_key({
        "model": model, "dataset": dataset_identity(cfg.dataset), "dataset_code": target_fingerprint(cfg.dataset),
        "method": plain(cfg.method), "method_code": target_fingerprint(cfg.method),
        "eval": {"target": cfg.eval.target}, "seed": cfg.seed,
        "device": device.type, "version": ATTRIBUTION_VERSION, "code_version": code_version(),
    })


def config_hash(cfg: DictConfig) -> str:
    """Hash of exactly what determines a run's results (the tag ``harness.config_hash``; resume matches on it).

    Leaves out where things are stored and how they are shown (:data:`NOT_RESULTS`:
    paths, tracking URI/experiment/run name, heat-map count, cache and sweep settings, ``eval.num_workers``),
    and includes :func:`code_version`, so a sweep re-run after a code change runs again, and for a
    dataset read from files the hash of their listing (:func:`dataset_identity`), so one re-run
    after the images changed does too.
    """
    identity = {k: v for k, v in plain(cfg).items() if k not in NOT_RESULTS}
    if isinstance(identity.get("eval"), dict):
        identity["eval"] = {k: v for k, v in identity["eval"].items() if k not in NOT_RESULTS_EVAL}
    files = dataset_identity(cfg.dataset).get("files") if "dataset" in cfg else None
    return content_key({"config": identity, "code_version": code_version(), **({"dataset_files": files} if files else {})})
