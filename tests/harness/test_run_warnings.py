"""Warnings raised during a run are printed in one line each and stored in the tag harness.warnings."""
import json
import warnings
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from harness.runner import WARNINGS_TAG, RunWarning, recorded_warnings, run, suspicious, warning_lines
from metrics import MetricResult


class WarningExplainer:
    """A zero map (constant for every sample), with a plain warnings.warn as any method might raise."""

    def __call__(self, model, inputs, targets):
        warnings.warn("this explainer is only a stand-in", UserWarning, stacklevel=2)
        return torch.zeros_like(inputs)

    def forward_passes_per_sample(self, shape):
        return 0


def test_a_runs_warnings_are_one_line_each_and_in_the_tag(make_cfg, capsys):
    cfg = make_cfg("~method", "+method._target_=tests.harness.test_run_warnings.WarningExplainer", "seed=15",
                   "model.training.epochs=0", "metric=[deletion]", "eval.batch_size=4")
    outcome = run(cfg)
    client = MlflowClient()
    tags = client.get_run(outcome.run_id).data.tags
    tag = tags[WARNINGS_TAG]
    lines = tag.split("\n")
    assert any(line.startswith("this explainer is only a stand-in [UserWarning") and line.endswith("(x2)") for line in lines), lines
    assert any("constant map for every one of the 8 samples" in line for line in lines)
    assert any("chance accuracy" in line for line in lines)  # an untrained model
    # The determinism manifest rides along: thread count and library versions of this run.
    assert tags["harness.env.threads"] == str(torch.get_num_threads()) and tags["harness.env.torch"] == torch.__version__
    manifest = json.loads((Path(client.download_artifacts(outcome.run_id, "manifest.json"))).read_text())
    assert manifest["threads"] == torch.get_num_threads() and manifest["versions"]["numpy"]
    printed = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert printed == [f"warning: {line}" for line in lines]


def test_the_runner_warns_on_an_all_nan_metric_and_not_on_a_sound_run():
    maps = torch.rand(4, 1, 4, 4)
    fine = {"m": MetricResult(scores=torch.tensor([0.1, float("nan"), 0.3, 0.2]), higher_is_better=True)}
    with recorded_warnings() as caught:
        suspicious({"test_accuracy": 0.9}, 4, 512, maps, fine)
    assert caught == []
    undefined = {"m": MetricResult(scores=torch.full((4,), float("nan")), higher_is_better=True)}
    with recorded_warnings() as caught:
        suspicious({"test_accuracy": 0.9}, 4, 512, maps, undefined)
    assert [str(w.message) for w in caught] == ["metric m is NaN for every sample: it is undefined here (see the per-sample reasons)"]
    assert caught[0].category is RunWarning


@pytest.mark.parametrize("accuracy, warned", [(0.25, True), (0.28, True), (0.40, False)])
def test_chance_accuracy_allows_for_the_test_set_size(accuracy, warned):
    with recorded_warnings() as caught:
        suspicious({"test_accuracy": accuracy}, 4, 512, torch.rand(2, 1, 2, 2), {})
    assert bool(caught) == warned


def test_warning_lines_are_single_lines():
    with recorded_warnings() as caught:
        warnings.warn("two\nlines", UserWarning, stacklevel=1)
    assert warning_lines(caught) == ["two lines [UserWarning, test_run_warnings]"]
