"""experiment=metric_reliability: its settings, its statistics on known cases, and one tiny run end to end."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import open_dict
from scipy.stats import t as t_dist

from harness import reliability
from harness.build import ConfigError

# two cheap methods and metrics, two seeds, two draws of each perturbation, 4 images at 16 px
SMALL = ["experiment=metric_reliability", "~meta.methods.integrated_gradients", "~meta.methods.gradcam", "~meta.methods.guided_backprop",
         "meta.seeds=[3,4]", "meta.n_perturbations=2", "metric=[sparseness,complexity]", "eval.n_samples=4"]


def test_interval_and_tau_on_known_values():
    mean, low, high = reliability.interval(np.array([1.0, 2.0, 3.0]))
    half = t_dist.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert mean == 2.0 and low == pytest.approx(2 - half) and high == pytest.approx(2 + half)
    assert reliability.interval(np.array([0.5, math.nan]))[0] == 0.5 and math.isnan(reliability.interval(np.array([0.5]))[1])
    assert reliability.tau(np.array([1, 2, 3]), np.array([10, 20, 30])) == 1.0
    assert reliability.tau(np.array([1, 2, 3]), np.array([3, 2, 1])) == -1.0
    assert math.isnan(reliability.tau(np.array([1, 1, 1]), np.array([1, 2, 3])))   # a constant ranking ranks nothing


def test_cross_seed_tau_is_the_mean_over_seed_pairs_and_keeps_the_lowest():
    headlines = {0: {"m": np.array([1.0, 2.0, 3.0])}, 1: {"m": np.array([1.0, 2.0, 3.0])}, 2: {"m": np.array([3.0, 2.0, 1.0])}}
    row = reliability.cross_seed(headlines).iloc[0]
    assert row["cross_seed_tau"] == pytest.approx((1 - 1 - 1) / 3) and row["cross_seed_tau_min"] == -1.0 and row["seed_pairs"] == 3


def test_noise_resilience_and_adversary_reactivity_are_the_means_of_their_two_tests():
    frame = pd.DataFrame([{"metric": "m", "iac_nr": 0.2, "iec_nr": 0.6, "iac_ar": 1.0, "iec_ar": 0.5, "mc": 0.575, "mc_ci_low": 0.5,
                           "mc_ci_high": 0.6, "n": 4, "minor_agreement": 1.0}])
    rows = reliability.per_seed({0: frame, 1: frame.assign(iac_nr=0.4, mc=0.625)})
    assert rows["noise_resilience"].tolist() == pytest.approx([0.4, 0.5]) and rows["adversary_reactivity"].tolist() == [0.75, 0.75]
    summary = reliability.summarise(rows, {0: {"m": np.array([1.0, 2.0])}, 1: {"m": np.array([1.0, 2.0])}}).iloc[0]
    assert summary["noise_resilience"] == pytest.approx(0.45) and summary["mc"] == pytest.approx(0.6) and summary["cross_seed_tau"] == 1.0


def test_bad_settings_stop_in_one_line(make_cfg):
    base = make_cfg(*SMALL)
    edits = [
        (lambda c: setattr(c.meta, "seeds", [1, 1]), "meta.seeds must be a list of distinct integers"),
        (lambda c: setattr(c.meta, "seeds", 3), "meta.seeds must be a list of distinct integers"),
        (lambda c: c.meta.methods.pop("saliency"), "meta.methods needs at least two methods"),
        (lambda c: setattr(c.meta, "space", "latent"), "meta.space must be model or input"),
        (lambda c: setattr(c.meta, "n_perturbations", 0), "meta.n_perturbations must be an integer >= 1"),
        (lambda c: setattr(c.meta, "minor_std", 3.0), "0 < minor_std < disruptive_std"),
        (lambda c: setattr(c.meta, "only_correct", "no"), "meta.only_correct must be true, false or null"),
        (lambda c: setattr(c.meta.methods.saliency, "batch_size", 0), "batch_size must be an integer >= 1"),  # the method's own check
    ]
    reliability.settings(base)   # the experiment's own settings are fine
    for edit, match in edits:
        cfg = base.copy()
        with open_dict(cfg):
            edit(cfg)
        with pytest.raises(ConfigError, match=match) as stop:
            reliability.settings(cfg)
        assert "\n" not in str(stop.value)
    cfg = base.copy()
    with open_dict(cfg):
        cfg.meta.draws = 3
    with pytest.raises(ConfigError, match="unknown key 'meta.draws'"):
        reliability.settings(cfg)


def test_the_command_line_pre_flight_checks_the_meta_node(tmp_path):
    from harness.preflight import check

    with pytest.raises(ConfigError, match="meta.only_correct must be true, false or null; got 'maybe'"):
        check(["experiment=metric_reliability", "meta.only_correct=maybe", f"paths.root={tmp_path}"])


@pytest.mark.slow
def test_a_tiny_metric_reliability_run_logs_a_parent_with_one_child_per_seed_and_a_report(harness_home, tmp_path, monkeypatch, capsys):
    """Through the Hydra app, as ``harness experiment=metric_reliability ...`` runs it (app.py sends a ``meta`` config here)."""
    from harness.app import main
    from tests.conftest import TINY

    monkeypatch.setattr("sys.argv", ["harness", *TINY, *SMALL, "tracking.experiment=reliability-test", f"hydra.run.dir={tmp_path / 'hydra'}"])
    main()
    assert "| sparseness |" in capsys.readouterr().out   # the report is printed
    client = MlflowClient()
    experiment = client.get_experiment_by_name("reliability-test").experiment_id
    (parent,) = client.search_runs([experiment], "tags.`harness.kind` = 'metric_reliability'")
    assert parent.info.status == "FINISHED" and parent.data.tags["harness.seeds"] == "3,4"
    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(c.data.tags["harness.seed"] for c in children) == ["3", "4"]
    assert all(c.data.tags["harness.kind"] == "meta_evaluation" for c in children)
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "report")} >= {
        "report/report.md", "report/reliability.csv", "report/per_seed.csv", "report/inter_metric_tau.csv", "report/reliability.png"}
    folder = Path(client.download_artifacts(parent.info.run_id, "report", str(tmp_path)))
    summary = pd.read_csv(folder / "reliability.csv")
    assert list(summary["seeds"]) == [2, 2] and summary["cross_seed_tau"].between(-1, 1).all()
    assert summary["mc"].between(0, 1).all()
    inter = pd.read_csv(folder / "inter_metric_tau.csv", index_col="metric")
    assert np.diag(inter.to_numpy()).tolist() == [1.0, 1.0]
    mc = dict(zip(summary["metric"], summary["mc"]))
    assert parent.data.metrics["reliability/sparseness/mc"] == pytest.approx(mc["sparseness"])


def test_the_seeds_metric_order_ignores_a_metric_undefined_on_some_seed():
    rows = pd.DataFrame({"seed": [0, 0, 0, 1, 1, 1], "metric": ["a", "b", "c"] * 2, "mc": [0.9, 0.5, math.nan, 0.8, 0.6, 0.7]})
    assert reliability.metric_order_agreement(rows) == 1.0   # a above b on both seeds; c has no MC on seed 0


def test_only_correct_false_is_set_on_the_metrics_that_have_it(make_cfg):
    cfg = make_cfg("experiment=metric_reliability")
    assert cfg.meta.only_correct is False and cfg.metric.spurious_background.only_correct is True   # the metric's own default
    methods, _, args = reliability.settings(cfg)
    assert "only_correct" not in args                                                             # not a meta_evaluate argument
    one = reliability.seed_configs(cfg, methods, 0)[0]
    assert one.metric.spurious_background.only_correct is False and "only_correct" not in one.metric.deletion
    chosen = make_cfg("experiment=metric_reliability", "metric=[sparseness,deletion]")             # no stray metric node
    assert list(reliability.seed_configs(chosen, reliability.settings(chosen)[0], 0)[0].metric) == ["sparseness", "deletion"]
