"""Optional libraries behind the adapters: imported when an adapter is built, with one line naming the install command;
and the seeded global generators the libraries draw from."""
from __future__ import annotations

import contextlib
import importlib
import random
from collections.abc import Iterator

import numpy as np
import torch


def require(module: str, package: str, owner: str):
    """Import ``module`` or raise ``ImportError`` in one line: ``{owner} needs {package}: pip install {package}``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"method={owner} needs the optional library {package}: pip install {package} "
                          f"(or pip install 'attribution-harness[adapters]')") from None


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Torch (CPU and ``device``), NumPy and ``random`` generators seeded with ``seed`` (null -> 0) for the block and
    restored afterwards: libraries draw from the global generators (Captum's GradientShap from NumPy's)."""
    seed = 0 if seed is None else seed
    state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            np.random.seed(seed)
            random.seed(seed)
            yield
    finally:
        np.random.set_state(state)
        random.setstate(py_state)
