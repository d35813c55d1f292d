"""The sanity_checks report: example maps per cascade stage, and the random-labels comparison of two logged runs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib import image
from mlflow.tracking import MlflowClient

from harness.report import report
from harness.report.sanity import cascade_maps
from harness.runner import run
from metrics.randomization import spearman


@pytest.mark.slow
def test_the_report_shows_cascade_maps_and_the_random_labels_similarity(make_cfg, tmp_path):
    common = ["method=saliency", "+metric.cascade={_target_: metrics.randomization.Randomization, cascade: true, max_layers: 2}",
              "metric=[]", "eval.n_samples=4", "tracking.heatmaps=4", "tracking.experiment=sanity-report-test", "seed=29"]
    outcomes = {}
    for flag in ("false", "true"):
        overrides = [*common, f"model.training.random_labels={flag}"]
        outcomes[flag] = run(make_cfg(*overrides), overrides=overrides)
    client = MlflowClient()
    # the cascade is the metric's own: re-running it with a recording explainer gives the maps it scored
    found = cascade_maps(client, outcomes["false"].run_id, n=2)
    assert found["stages"][0] == "original" and len(found["stages"]) == 3   # max_layers: 2 stages after the original
    assert found["maps"].shape[:2] == (3, 2) and found["images"].shape[0] == 2
    original = torch.from_numpy(found["maps"][0]).flatten(1).abs().double()
    per_stage = [float(spearman(original, torch.from_numpy(found["maps"][k]).flatten(1).abs().double()).mean()) for k in (1, 2)]
    logged = pd.read_csv(client.download_artifacts(outcomes["false"].run_id, "scores.csv", str(tmp_path)))["cascade"][:2]
    assert logged.mean() == pytest.approx(np.mean(per_stage), abs=1e-3)   # the figure shows what the metric scored
    out = tmp_path / "report"
    report("sanity-report-test", out, n_resamples=100, log=False)
    text = (out / "report.md").read_text()
    assert "## Sanity checks" in text and "![cascade maps](cascade_maps.png)" in text
    assert image.imread(out / "cascade_maps.png")[..., :3].std() > 0.02
    labels = pd.read_csv(out / "random_labels.csv")
    assert list(labels["method"]) == ["Saliency"] and labels["n"].tolist() == [4]
    assert -1 <= labels["similarity"].iloc[0] < 1   # two different models: the maps are not the same
    assert "| Saliency | 29 |" in text
