"""A run's manifest: what it takes to rerun it and what may differ between machines running it.

Logged by the runner as the artifact ``manifest.json`` (with tags ``harness.env.*``), in two steps:
:func:`manifest` when the run starts (so a run that fails still has one) and
:func:`with_hashes` once the evaluation has been made (the file is rewritten).

Contents:

* ``config`` (the composed config, resolved), ``seed``, ``config_hash`` (:func:`harness.cache.config_hash`);
* ``project``: the package's version, the ``git`` commit of the source checkout the code was
  imported from and whether its tracked files differ from that commit (``dirty``; untracked files
  are not counted, as ``git describe --dirty``), ``"unknown"`` for both when the code is not in a git
  checkout (an installed wheel) or git is absent; ``code_version`` (the hash of every source file and
  the library versions, :func:`harness.cache.code_version`, which is part of every cache key);
* ``versions`` of Python, torch, torchvision, NumPy, SciPy, MLflow, Hydra and the optional
  libraries (``"absent"`` when not installed);
* ``threads``, ``interop_threads``, the CPU capability torch dispatches to (AVX2/AVX512), the
  machine, the device and the GPU model: what changes float results in their last bits;
* ``weights_sha256``: SHA-256 of the model's ``state_dict`` (every tensor's name, dtype, shape and
  bytes, in the dict's order, on the CPU): equal for the same weights whatever the cache file;
* ``data_sha256`` with ``data_hash_of`` saying what was hashed: ``"evaluation inputs"`` (the
  evaluation samples' image, label and mask bytes, hashed batch by batch in the evaluation order as
  the run evaluates them, :class:`InputsDigest`), or, for a
  dataset read from files (:class:`harness.datasets.ReadsFiles`, e.g. ``image_folder``, whose images
  would be read twice), ``"dataset identity"``: the dataset config, every file's path, size and
  modification time (:func:`harness.cache.keys.dataset_identity`) and the evaluation indices.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from harness.cache import code_version, config_hash
from harness.cache.keys import dataset_identity

LIBRARIES = ("torch", "torchvision", "numpy", "scipy", "mlflow", "hydra", "omegaconf", "captum", "zennit", "pytorch_grad_cam",
             "quantus", "skimage", "pandas")
DISTRIBUTIONS = {"hydra": "hydra-core", "pytorch_grad_cam": "grad-cam", "skimage": "scikit-image"}
PROJECT = "attribution-harness"
SOURCE = Path(__file__).resolve().parents[2]   # the folder holding the harness package (a checkout's root)
UNKNOWN = "unknown"
HASH_BATCH = 256                               # evaluation samples read per step while hashing them
ARTIFACT = "manifest.json"


@functools.lru_cache(maxsize=4)
def git_state(folder: Path = SOURCE) -> dict[str, str | bool]:
    """``{"commit": sha, "dirty": bool}`` of the git checkout at ``folder``; ``"unknown"`` for both outside one or without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True, timeout=20).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != folder.resolve():
            return {"commit": UNKNOWN, "dirty": UNKNOWN}  # the package sits inside some other repository (e.g. a venv in one)
        return {"commit": git("rev-parse", "HEAD"), "dirty": git("status", "--porcelain", "--untracked-files=no") != ""}
    except (OSError, subprocess.SubprocessError):  # git absent, not a checkout, no commit yet, or too slow
        return {"commit": UNKNOWN, "dirty": UNKNOWN}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "torch_build": torch.__version__}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(DISTRIBUTIONS.get(name, name))
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def project_version() -> str:
    try:
        return importlib.metadata.version(PROJECT)
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN  # run from a source tree that was never installed


def manifest(device: torch.device, cfg: DictConfig | None = None) -> dict:
    """The manifest as a run starts (module docstring); ``cfg`` adds the config, seed and config hash."""
    found = {
        "project": {"version": project_version(), **git_state(), "code_version": code_version()},
        "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
        "versions": versions(), "code_version": code_version(),
        "machine": platform.machine(), "system": platform.system(), "processor": platform.processor() or UNKNOWN,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "device": device.type, "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    if cfg is not None:
        found |= {"seed": cfg.get("seed"), "config_hash": config_hash(cfg), "config": OmegaConf.to_container(cfg, resolve=True)}
    return found


def tags(found: dict) -> dict[str, str]:
    """The manifest's one-line tags ``harness.env.*`` (filterable in MLflow's run list)."""
    out = {"harness.env.threads": str(found["threads"]), "harness.env.torch": found["versions"]["torch_build"],
           "harness.env.code_version": found["code_version"], "harness.env.cpu": str(found["cpu_capability"]),
           "harness.env.git_commit": str(found["project"]["commit"]), "harness.env.git_dirty": str(found["project"]["dirty"]).lower()}
    for key in ("weights_sha256", "data_sha256"):
        if key in found:
            out[f"harness.env.{key}"] = found[key]
    return out


def weights_hash(model: torch.nn.Module) -> str:
    """SHA-256 of a model's state dict: each entry's name, dtype and shape, then its bytes (on the CPU, contiguous)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}\0".encode())
        _tensor_bytes(digest, tensor)
    return digest.hexdigest()


def _tensor_bytes(digest, tensor: torch.Tensor | None) -> None:
    if tensor is None:
        digest.update(b"none\0")
        return
    tensor = tensor.detach().cpu().contiguous()
    digest.update(f"{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")


class InputsDigest:
    """SHA-256 of evaluation samples fed batch by batch (:class:`~harness.datasets.ImageSplit` parts, in the
    evaluation order): images, labels and masks each streamed into its own digest, so the result does not depend
    on how the samples were batched, then their dtypes and per-sample shapes. The runner feeds it the batches it
    evaluates, so the inputs are not made or read a second time."""

    def __init__(self) -> None:
        self.digests = {key: hashlib.sha256() for key in ("images", "labels", "masks")}
        self.layout: dict[str, str] = {}

    def update(self, part) -> None:
        for key, digest in self.digests.items():
            tensor = getattr(part, key)
            if tensor is None:
                self.layout[key] = "none"
                continue
            tensor = tensor.detach().cpu().contiguous()
            self.layout[key] = f"{tensor.dtype}{tuple(tensor.shape[1:])}"
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")

    def hexdigest(self) -> str:
        whole = hashlib.sha256()
        for key, digest in self.digests.items():
            whole.update(f"{key}\0{self.layout.get(key, 'none')}\0{digest.hexdigest()}\0".encode())
        return whole.hexdigest()


def inputs_hash(split, indices: torch.Tensor, batch: int = HASH_BATCH) -> str:
    """:class:`InputsDigest` of the samples ``indices`` of ``split``, ``batch`` at a time."""
    digest = InputsDigest()
    for idx in indices.split(batch):
        digest.update(split.select(idx))
    return digest.hexdigest()


def files_hash(dataset_cfg: DictConfig, indices: torch.Tensor) -> str:
    """SHA-256 of a file dataset's identity (config, every file's path, size and mtime) and the evaluation indices."""
    identity = {"dataset": dataset_identity(dataset_cfg), "indices": indices.tolist()}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def with_hashes(found: dict, model: torch.nn.Module, data_sha256: str, data_hash_of: str) -> dict:
    """``found`` with ``weights_sha256``, ``data_sha256`` and ``data_hash_of`` (module docstring)."""
    return found | {"weights_sha256": weights_hash(model), "data_sha256": data_sha256, "data_hash_of": data_hash_of}
