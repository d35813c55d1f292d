"""The Python API: ``harness.evaluate`` reproduces the command line's per-sample scores; names, overrides, objects; one-line errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

import harness
from harness.build import ConfigError
from harness.cache import cached_split
from harness.runner import prepare
from harness.training import trained_model
from methods import IntegratedGradients, Saliency
from tests.conftest import TINY
from tests.toy_models import relu_cnn


@pytest.mark.slow
def test_evaluate_reproduces_the_command_lines_per_sample_scores(make_cfg):
    overrides = ["method=integrated_gradients", "method.n_steps=8", "metric=[deletion,insertion,spurious_background]"]
    result = harness.run(TINY + overrides)
    assert set(result.summary["metric"]) == {"deletion", "insertion", "spurious_background"} and len(result.run_id) == 32
    client = MlflowClient()
    assert client.get_run(result.run_id).data.tags["harness.overrides"] == " ".join(TINY + overrides)
    logged = pd.read_csv(client.download_artifacts(result.run_id, "scores.csv"))

    cfg = make_cfg(*overrides)  # the same model (from the cache) and the same test images, rebuilt from Python
    parts = prepare(cfg)
    cache = Path(str(cfg.paths.cache)).expanduser().resolve()
    train, test = (cached_split(cfg, parts.dataset, s, cache) for s in ("train", "test"))
    model = trained_model(cfg.model, cfg.dataset, parts.dataset, train, test, cfg.seed, cache, torch.device("cpu")).model
    picked = torch.tensor(logged["index"].to_list())
    frame = harness.evaluate(model, test.images[picked], methods={"integrated_gradients": {"n_steps": 8}},
                             metrics=["deletion", "insertion", "spurious_background"], masks=test.masks[picked], labels=test.labels[picked],
                             mean=parts.dataset.mean, std=parts.dataset.std, indices=picked, seed=cfg.seed, device="cpu")
    assert len(frame) == 3 * len(picked) and set(frame.columns) >= {"method", "metric", "sample", "score", "target", "predicted"}
    for metric in ("deletion", "insertion", "spurious_background"):
        ours = frame[frame.metric == metric].set_index("sample")["score"].sort_index()
        np.testing.assert_allclose(ours.to_numpy(), logged.set_index("index")[metric].sort_index().to_numpy(), rtol=1e-5, atol=1e-7)
    assert frame.groupby("metric")["score"].mean()["deletion"] == pytest.approx(
        float(result.summary.set_index("metric").loc["deletion", "value"]), rel=1e-5)


def test_names_overrides_and_objects_give_the_same_maps_computed_once():
    model, x = relu_cnn(channels=1, classes=3), torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    calls = []

    class Counting(Saliency):
        def __call__(self, model, inputs, targets):
            calls.append(len(inputs))
            return super().__call__(model, inputs, targets)

    frame = harness.evaluate(model, x, methods={"saliency": None, "ig": IntegratedGradients(n_steps=4), "counted": Counting()},
                             metrics={"deletion": {"steps": 0.25}, "insertion": {"steps": 0.25}}, device="cpu")
    assert len(frame) == 3 * 2 * 4 and calls == [4]  # one explainer call for two metrics
    by = frame.pivot_table(index=["metric", "sample"], columns="method", values="score")
    np.testing.assert_allclose(by["saliency"], by["counted"])
    named = harness.evaluate(model, x, methods={"integrated_gradients": {"n_steps": 4}}, metrics={"deletion": {"steps": 0.25}}, device="cpu")
    np.testing.assert_allclose(named.score.to_numpy(), frame[(frame.method == "ig") & (frame.metric == "deletion")].score.to_numpy())


def test_a_torch_dataset_of_image_label_pairs_is_read_whole_and_logged(harness_home):
    model = relu_cnn(channels=1, classes=3)
    x, y = torch.randn(5, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1])
    frame = harness.evaluate(model, torch.utils.data.TensorDataset(x, y), targets="label", methods="saliency",
                             metrics={"deletion": {"steps": 0.25}}, device="cpu", tracking=True)
    assert frame.label.tolist() == y.tolist() and frame.target.tolist() == y.tolist()
    run = MlflowClient().get_run(frame.attrs["run_ids"]["saliency"])
    assert run.data.tags["harness.entry"] == "harness.evaluate" and run.data.metrics["deletion"] == pytest.approx(frame.score.mean(), rel=1e-5)
    assert pd.read_csv(MlflowClient().download_artifacts(run.info.run_id, "scores.csv"))["deletion"].tolist() == pytest.approx(frame.score.tolist())


@pytest.mark.parametrize("kwargs, message", [
    ({"methods": "salency"}, "unknown method 'salency'; allowed:"),
    ({"methods": {"integrated_gradients": {"n_step": 3}}}, "unknown key 'n_step' for method integrated_gradients"),
    ({"methods": {"integrated_gradients": {"n_steps": 0}}}, "n_steps"),
    ({"metrics": ["spurious_background"]}, "metric spurious_background needs foreground masks"),
    ({"metrics": ["background_gap"]}, "needs background-swapped test images"),
    ({"targets": torch.tensor([0, 1])}, "targets must hold one class per input (4)"),
])
def test_bad_arguments_fail_in_one_line_before_any_work(kwargs, message):
    with pytest.raises(ConfigError) as error:
        harness.evaluate(relu_cnn(channels=1, classes=3), torch.randn(4, 1, 8, 8), device="cpu", **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_run_refuses_a_sweep_and_reports_bad_overrides_like_the_command_line():
    with pytest.raises(ConfigError, match="runs one job"):
        harness.run(["method=saliency,gradient"])
    with pytest.raises(ConfigError, match="unknown method 'salency'"):
        harness.run(["method=salency"])
