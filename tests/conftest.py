"""Shared test settings and fixtures.

No telemetry; one throw-away harness home (MLflow SQLite store + model cache) for the
whole session, because creating an MLflow store costs about 2 s; a compose-API
fixture that builds configs exactly as ``python -m harness`` does.
"""
from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.pop("MLFLOW_TRACKING_URI", None)

import pytest  # noqa: E402
from hydra import compose, initialize_config_module  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402

# Small enough that an end-to-end run takes seconds on a 2-core CPU.
TINY = [
    "dataset.n_train=256", "dataset.n_test=64", "dataset.image_size=16",
    "model.training.epochs=1", "eval.n_samples=8", "tracking.heatmaps=2",
]


@pytest.fixture(scope="session")
def harness_home(tmp_path_factory) -> str:
    home = str(tmp_path_factory.mktemp("harness_home"))
    os.environ["HARNESS_HOME"] = home
    return home


@pytest.fixture
def make_cfg(harness_home):
    """``make_cfg(*overrides)``: the composed config of ``python -m harness <TINY> <overrides>``."""

    def make(*overrides: str, tiny: bool = True):
        GlobalHydra.instance().clear()
        with initialize_config_module("conf", version_base="1.3"):
            return compose("config", overrides=(TINY if tiny else []) + list(overrides))

    yield make
    GlobalHydra.instance().clear()


@pytest.fixture(autouse=True, scope="session")
def single_thread():
    """One intra-op thread: the tests' models are tiny, and two spinning OpenMP threads on a loaded
    2-core machine were measured ~10x slower. Subprocess runs keep torch's default."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
