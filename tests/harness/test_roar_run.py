"""ROAR through the runner: the runner's ``retrain`` retrains and caches the model; a second run reuses it."""
from pathlib import Path

import pytest

from harness.runner import run


@pytest.mark.slow
def test_roar_runs_end_to_end_and_its_retrained_model_is_cached(make_cfg):
    cfg = make_cfg("metric=[roar]", "metric.roar.fractions=[0.5]", "method=random", "tracking.heatmaps=0")
    first = run(cfg)
    models = sorted(p.name for p in (Path(str(cfg.paths.cache)).expanduser() / "models").glob("*.pt"))
    assert len(models) >= 2                                    # the run's model and the one retrained without half its pixels
    assert first.summary["metric"].tolist() == ["roar"] and 0 <= first.headline()["roar"] <= 1
    assert first.results["roar"].curves.shape == (cfg.eval.n_samples, 1)
    again = run(cfg)
    assert sorted(p.name for p in (Path(str(cfg.paths.cache)).expanduser() / "models").glob("*.pt")) == models   # nothing retrained
    assert again.headline() == first.headline()
