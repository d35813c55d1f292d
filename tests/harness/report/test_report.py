"""The comparison report, read from a tiny sweep in an MLflow store (3 methods incl. random x 2 metrics x 2 seeds).

The sweep is logged in run_log's format without training (tests/harness/report/sweep_store.py):
``good`` is better than ``random`` on every sample, ``twin`` is the same map as ``random``.
"""
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib import image

from harness import reports
from harness.report import analyse, collect, load, render, stats, write
from harness.report.plots import DPI
from tests.harness.report import sweep_store


@pytest.fixture(scope="module")
def sweep(harness_home, tmp_path_factory):
    root = tmp_path_factory.mktemp("report_store")
    return sweep_store.build(root, harness_home)


@pytest.fixture(scope="module")
def report(sweep):
    uri, parent = sweep
    return analyse(collect(parent, uri), seed=0, n_resamples=400)


def test_load_gives_the_tidy_frame_from_the_store_and_names_the_run_without_scores(sweep):
    uri, parent = sweep
    frame = load(parent, uri)
    assert list(frame.columns) == ["run", "method", "model", "dataset", "seed", "sample", "metric", "score"]
    assert len(frame) == 3 * 2 * 2 * sweep_store.N and frame["score"].dtype == float
    assert sorted(frame["method"].unique()) == ["good", "random", "twin"] and sorted(frame["seed"].unique()) == [0, 1]
    collection = collect(parent, uri, curves=False)
    assert len(collection.skipped) == 1 and "broken" in collection.skipped[0] and "scores.csv" in collection.skipped[0]
    assert collection.better == {"insertion": "higher", "deletion": "lower"}


def test_an_experiment_name_and_a_filter_string_are_sources_too(sweep):
    uri, _ = sweep
    assert load(sweep_store.EXPERIMENT, uri)["run"].nunique() == 6  # the experiment: every run but the sweep's parent
    assert set(load("tags.harness.method = 'good'", uri)["method"]) == {"good"}
    with pytest.raises(ValueError, match="no run id, no experiment name and no valid filter"):
        load("not a = filter", uri)


def test_every_interval_contains_its_value_and_seeds_make_it_two_level(report):
    s = report.summary
    assert ((s["ci_low"] <= s["value"]) & (s["value"] <= s["ci_high"])).all()
    assert (s["ci_high"] > s["ci_low"]).all() and (s["n"] == 2 * sweep_store.N).all()
    assert "two-level" in report.ci_kind and report.varies == ["seed"]


def test_the_bootstrap_is_seeded():
    data = np.random.default_rng(1).normal(size=(20, 3))
    blocks = np.zeros(20, int)
    one, two = stats.intervals(data, blocks, "mean", 7, 300), stats.intervals(data, blocks, "mean", 7, 300)
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])
    means = data.mean(0)
    assert np.all((one[0] <= means) & (means <= one[1]))
    blocks = np.repeat([0, 1], 10)
    low, high = stats.intervals(data, blocks, "mean", 7, 300)
    assert np.all((low <= means) & (means <= high))


def test_intervals_are_defined_when_most_scores_are_undefined():
    data = np.random.default_rng(2).normal(size=(16, 2))
    data[4:, :] = np.nan  # a metric defined on 4 of 16 samples (e.g. only where the object is found)
    data[0, 1] = np.nan   # and one more missing for one method only
    low, high = stats.intervals(data, np.zeros(16, int), "mean", 0, 300)
    means = np.nanmean(data, 0)
    assert not np.isnan(low).any() and np.all((low <= means) & (means <= high))


def test_ranks_follow_each_metrics_direction_and_the_copy_of_random_is_flagged(report):
    s = report.summary.set_index(["metric", "method"])
    for metric in ("insertion", "deletion"):
        assert s.loc[(metric, "good"), "rank"] == 1 and s.loc[(metric, "good"), "beats_random"] == 1
        assert s.loc[(metric, "twin"), "beats_random"] == 0 and s.loc[(metric, "twin"), "rank"] == 2.5
    assert list(report.wide["method"])[0] == "good" and report.wide.set_index("method").loc["random", "control"]
    board = report.wide.set_index("method")
    assert board.loc["good", "mean_rank"] == 1 and board.loc["good", "deletion_rank"] == 1
    lines = {line.split(" | ")[0]: line for line in render.markdown_leaderboard(report).splitlines()}
    assert "†" in lines["| twin"] and "†" not in lines["| good"] and "**" in lines["| good"] and "| *random* (control)" in lines


def test_a_method_against_itself_is_not_significant_and_holm_is_monotone(report):
    x = np.random.default_rng(0).normal(size=15)
    assert stats.paired_test(x, x.copy()) == (1.0, 15)
    pairs = report.pairs.set_index(["metric", "a", "b"])
    assert not pairs.loc[("insertion", "twin", "random"), "significant"] and pairs.loc[("insertion", "twin", "random"), "p"] == 1
    assert pairs.loc[("deletion", "good", "random"), "significant"] and pairs.loc[("deletion", "good", "random"), "gain"] > 0
    raw = np.random.default_rng(3).uniform(size=12) ** 3
    adjusted = stats.holm(raw)
    order = np.argsort(raw)
    assert np.all(np.diff(adjusted[order]) >= 0) and np.all(adjusted >= raw) and adjusted.max() <= 1
    assert np.allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])  # Holm 1979 by hand: 3p1, max(2p3, .), max(1p2, .)


def test_agreement_kendall_tau_and_verdicts(report):
    assert stats.tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1 and stats.tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1
    assert "agree, τ = 1.00" in stats.verdict(1.0, "a and b") and "too few" in stats.verdict(float("nan"), "x")
    pair = report.agreement[report.agreement["kind"] == "metrics"].iloc[0]
    assert pair["tau"] > 0.5  # insertion (higher) and deletion (lower) rank the methods alike once signed
    assert (report.agreement["kind"] == "across seeds").sum() == 2


def test_warnings_carry_the_runs_tags_and_the_skipped_run(report):
    text = "\n".join(report.warnings)
    assert "twin: a warning raised during the run (2 runs: twin seed 0, twin seed 1)" in text and "broken" in text
    assert "near chance" not in text  # 0.9 accuracy, chance 0.25


def test_the_folder_has_every_file_and_the_figures_are_drawn(report, tmp_path):
    write(report, tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"scores.csv", "scores.parquet", "leaderboard.csv", "leaderboard.md", "leaderboard.tex", "report.md", "significance.csv",
            "agreement.csv", "models.csv", "summary.csv"} <= names
    wide = pd.read_csv(tmp_path / "leaderboard.csv")
    assert {"insertion", "insertion_ci_low", "insertion_ci_high", "insertion_n", "insertion_rank", "mean_rank"} <= set(wide.columns)
    assert all(pd.api.types.is_numeric_dtype(wide[c]) for c in wide.columns if c not in ("method", "control"))
    expected = {"curves_insertion": (3.6, 5), "metric_scatter": (3.2, 3.2), "rank_stability": (3.2, 6.4)}
    for name, (height, width) in expected.items():
        assert f"{name}.pdf" in names
        pixels = image.imread(tmp_path / f"{name}.png")
        assert pixels.shape[:2] == (round(height * DPI), round(width * DPI))
        assert pixels[..., :3].std() > 0.05  # drawn, not blank
    grid = image.imread(tmp_path / "heatmap_grid.png")  # methods x 3 samples, from each run's heatmaps.npz
    assert grid.shape[0] > grid.shape[1] * 0.8 and grid[..., :3].std() > 0.05
    assert "curves_deletion.png" not in names  # deletion logged no curves
    assert "## Leaderboard" in (tmp_path / "report.md").read_text()


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_the_latex_table_compiles(report, tmp_path):
    table = render.latex_leaderboard(report)
    (tmp_path / "t.tex").write_text("\\documentclass{article}\\usepackage[utf8]{inputenc}\\usepackage{booktabs}\n"
                                    f"\\begin{{document}}\n{table}\\end{{document}}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "t.tex"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-2000:]


def test_harness_report_dispatches_to_the_report_command(sweep, tmp_path, monkeypatch, capsys):
    uri, parent = sweep
    from harness.__main__ import main

    monkeypatch.setattr(sys, "argv", ["harness", "report", parent, "--out", str(tmp_path / "r"), "--tracking-uri", uri, "--no-log",
                                      "--n-resamples", "200"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0 and (tmp_path / "r" / "leaderboard.md").exists()
    assert "| good |" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["harness", "report", "no such experiment or filter", "--tracking-uri", uri])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 2 and "no run id, no experiment name" in capsys.readouterr().err


def test_a_run_warns_when_its_model_is_near_chance():
    from harness.runner import suspicious

    maps = torch.rand(2, 1, 4, 4)
    with pytest.warns(UserWarning, match="at or near chance"):
        suspicious({"test_accuracy": 0.27}, 4, 10_000, maps, {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        suspicious({"test_accuracy": 0.9}, 4, 10_000, maps, {})


def test_the_sweep_table_has_numeric_columns():
    runs = pd.DataFrame({"tags.harness.metrics": ["deletion"], "tags.harness.overrides": ["method=a"], "tags.harness.job": ["0"],
                         "status": ["FINISHED"], "metrics.deletion": [0.3], "metrics.deletion_ci_low": [0.2], "metrics.deletion_ci_high": [0.4]})
    table = reports.sweep_table(runs)
    assert table.loc[0, "deletion"] == 0.3 and table.loc[0, "deletion_ci_high"] == 0.4 and table["deletion_ci_low"].dtype == float


def test_groups_letters_share_a_letter_exactly_when_not_significantly_different(report):
    assert stats.letters(["A", "B", "C"], set()) == {"A": "a", "B": "a", "C": "a"}
    assert stats.letters(["A", "B", "C"], {frozenset("AC")}) == {"A": "a", "B": "ab", "C": "b"}
    assert stats.letters(list("ABCD"), {frozenset("AB"), frozenset("CD")}) == {"A": "ab", "B": "cd", "C": "ac", "D": "bd"}
    rng = np.random.default_rng(5)
    names = list("ABCDEF")
    for _ in range(20):
        different = {frozenset((a, b)) for i, a in enumerate(names) for b in names[i + 1:] if rng.uniform() < 0.4}
        found = stats.letters(names, different)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                assert bool(set(found[a]) & set(found[b])) == (frozenset((a, b)) not in different)
    groups = report.summary.set_index(["metric", "method"])["group"]
    assert groups[("insertion", "good")] == "a" and groups[("insertion", "random")] == groups[("insertion", "twin")] == "b"
    assert report.friedman.set_index("metric").loc["insertion", "significant"]
    assert "| group |" in render.markdown_significance(report, "insertion") and "Friedman χ²" in render.markdown_significance(report, "insertion")
    flat = np.zeros((10, 3))
    assert stats.friedman(flat)[1] == 1 and np.isnan(stats.friedman(flat[:, :2])[0])


def test_with_several_blocks_the_signed_rank_test_is_stratified_not_pooled():
    rng = np.random.default_rng(6)
    a, b = rng.normal(0.2, 1, 24), rng.normal(0, 1, 24)
    blocks = np.repeat([0, 1], 12)
    assert stats.stratified_test(a, b) == stats.paired_test(a, b) and stats.stratified_test(a, a.copy(), blocks) == (1.0, 24)
    p, n = stats.stratified_test(a, b, blocks)
    scaled = a.copy()
    scaled[blocks == 1] = b[blocks == 1] + 1000 * (a - b)[blocks == 1]  # one block's differences 1000x larger: its ranks are unchanged
    assert stats.stratified_test(scaled, b, blocks) == (p, n) and 0 < p < 1
    assert stats.paired_test(scaled, b)[0] != p  # pooling would let that block dominate the ranking
    one_sided, _ = stats.stratified_test(a, b, blocks, alternative="greater")
    assert min(one_sided, 1 - one_sided) == pytest.approx(p / 2)  # the normal approximation's one-sided p is half the two-sided


def test_a_reused_job_shows_its_own_overrides_in_the_sweep_table_and_the_report(sweep):
    import mlflow
    from mlflow.tracking import MlflowClient

    from harness.report.load import reused_job_overrides
    from harness.sweeps import MlflowSweepCallback, resume

    uri, _ = sweep
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.create_experiment("reuse-tiny")
    earlier = client.create_run(experiment, tags={"harness.overrides": "method=a", "harness.job": "", "harness.metrics": "deletion"})
    client.log_metric(earlier.info.run_id, "deletion", 0.5)
    client.set_terminated(earlier.info.run_id, "FINISHED")
    parent = client.create_run(experiment, tags={"harness.sweep": "true"}).info.run_id
    child = client.create_run(experiment, tags={"mlflow.parentRunId": parent, "harness.overrides": "method=a seed=0", "harness.job": "0",
                                                "harness.metrics": "deletion"})
    client.set_terminated(child.info.run_id, "FINISHED")
    resume.link_to_parent(client, parent, "1", earlier.info.run_id, "method=a seed=1")
    callback = MlflowSweepCallback()
    callback.uri, callback.experiment_id = uri, experiment
    table = callback.table(parent).set_index("job")
    assert table.loc["1", "overrides"] == "seed=1" and table.loc["0", "overrides"] == "seed=0"  # not the earlier run's "method=a"
    assert table.loc["1", "run"] == f"reused {earlier.info.run_id}"
    assert reused_job_overrides(client.get_run(parent)) == {earlier.info.run_id: "method=a seed=1"}


def test_with_two_methods_friedman_is_undefined_and_the_letters_follow_the_pairs(sweep):
    from dataclasses import replace

    uri, parent = sweep
    collection = collect(parent, uri, curves=False)
    two = replace(collection, scores=collection.scores[collection.scores["method"] != "twin"],
                  runs=collection.runs[collection.runs["method"] != "twin"])
    result = analyse(two, seed=0, n_resamples=200)
    assert np.isnan(result.friedman["chi2"]).all()
    groups = result.summary.set_index(["metric", "method"])["group"]
    assert groups[("insertion", "good")] == "a" and groups[("insertion", "random")] == "b"  # good beats random significantly
