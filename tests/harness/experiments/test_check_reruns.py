"""scripts/check_reruns.py: a tiny two-job sweep run twice into fresh homes compares identical; a changed
metric value, a changed per-sample score and a missing run are each found."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import TINY

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "check_reruns.py"


def load_script():
    spec = importlib.util.spec_from_file_location("check_reruns", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def sweep(home: Path, monkeypatch) -> None:
    """``python -m harness -m method=saliency,random <TINY>`` in-process, into ``home``, without the end-of-sweep report
    (its figures cost most of the time; the script compares the reports' tables in the real runs)."""
    from harness.__main__ import main
    from harness.sweeps import MlflowSweepCallback

    monkeypatch.setattr(MlflowSweepCallback, "_report", lambda self, parent_id: None)

    monkeypatch.setenv("HARNESS_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)   # the sweep sets it for its workers, and restores it after
    monkeypatch.setattr(sys, "argv", ["harness", "-m", "method=saliency,random", "metric=[deletion]", *TINY, "eval.n_samples=4"])
    try:
        main()
    except SystemExit as done:
        assert done.code in (0, None)
    assert "MLFLOW_TRACKING_URI" not in os.environ   # a later sweep in this process logs where its own config says


@pytest.mark.slow
def test_two_fresh_runs_of_a_sweep_compare_identical_and_each_kind_of_difference_is_found(tmp_path, monkeypatch):
    check = load_script()
    first, second = tmp_path / "first", tmp_path / "second"
    sweep(first, monkeypatch)
    sweep(second, monkeypatch)
    a, b = check.load_store(first), check.load_store(second)
    same = check.compare(a, b)
    assert same.identical and same.runs == 3, same.problems              # parent + two jobs, paired by config hash
    assert same.metric_values > 10 and same.files >= 4 and same.file_values > 0
    assert any(path.endswith(".npz") for run in a.values() for path in run.files)            # the heat maps are compared too
    assert not any(m.startswith("time_") for run in a.values() for m in run.metrics)   # wall-clock timings are not compared

    job = next(k for k, r in b.items() if "deletion" in r.metrics)
    metric = b[job].metrics["deletion"]
    b[job].metrics["deletion"] = [(metric[0][0], metric[0][1] + 1e-7)]
    changed = check.compare(a, b)
    assert not changed.identical and changed.max_diff == pytest.approx(1e-7, rel=1e-3)
    assert any("/deletion" in p for p in changed.problems)
    b[job].metrics["deletion"] = metric

    scores = b[job].files["scores.csv"]
    frame = pd.read_csv(scores)
    column = next(c for c in frame.columns if c.startswith("deletion"))
    frame.loc[0, column] += 0.5
    edited = tmp_path / "scores.csv"
    frame.to_csv(edited, index=False)
    b[job].files["scores.csv"] = edited
    found = check.compare(a, b)
    assert not found.identical and found.max_diff == pytest.approx(0.5) and any("scores.csv" in p for p in found.problems)

    del b[job]
    assert any("in one store only" in p for p in check.compare(a, b).problems)
    client = MlflowClient(tracking_uri=f"sqlite:///{first / 'mlflow.db'}")
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == 3
