"""The sweep's cost estimate counts ROAR's retrainings: one per fraction x method x model, cached ones not."""
from pathlib import Path

from harness.runner import prepare
from harness.sweeps import cost
from harness.training import retrained_key


def test_roar_job_counts_one_retraining_per_uncached_fraction_and_one_explanation_of_the_training_set(make_cfg, tmp_path):
    cfg = make_cfg("metric=[roar]", "metric.roar.fractions=[0.3,0.6]", "method=random", f"paths.cache={tmp_path}")
    parts = prepare(cfg)
    job = cost.job_cost(cfg, parts)
    n_train, epochs = 256, 1                                         # TINY: 256 training images, 1 epoch
    assert job.retrainings == 2 and len(job.retrain_keys) == 2
    assert job.retraining == 2 * epochs * n_train + n_train * parts.explainer.forward_passes_per_sample((1, 16, 16))
    roar = parts.metrics["roar"]
    assert job.retrain_keys[0] == retrained_key(cfg, job.model_key, roar.identity(0.3))   # the key the run's Retrainer uses
    # one of the two retrained models cached: one retraining left; both cached: nothing, not even the explanations
    stored = cost.store(Path(tmp_path), "models")
    stored.path(job.retrain_keys[0]).parent.mkdir(parents=True, exist_ok=True)
    stored.path(job.retrain_keys[0]).write_bytes(b"")
    half = cost.job_cost(cfg, parts)
    assert (half.retrainings, half.retraining) == (1, epochs * n_train + n_train * parts.explainer.forward_passes_per_sample((1, 16, 16)))
    stored.path(job.retrain_keys[1]).write_bytes(b"")
    assert (cost.job_cost(cfg, parts).retrainings, cost.job_cost(cfg, parts).retraining) == (0, 0)
    line, _ = cost.estimate(job, [])
    assert line.endswith(f"ROAR 2 retrainings (~{job.retraining:.2g} passes)")


def test_sweep_over_methods_counts_roar_retrainings_per_method(make_cfg, tmp_path):
    base = make_cfg("metric=[roar]", "metric.roar.fractions=[0.5]", "method=random", f"paths.cache={tmp_path}")
    other = make_cfg("metric=[roar]", "metric.roar.fractions=[0.5]", "method=saliency", f"paths.cache={tmp_path}")
    a, b = cost.job_cost(base, prepare(base)), cost.job_cost(other, prepare(other))
    assert a.retrain_keys != b.retrain_keys                         # another method removes other pixels: another model
    line, _ = cost.estimate(a, [[b]])
    assert "2 jobs" in line and "ROAR 2 retrainings" in line
    plain = make_cfg("metric=[deletion]", f"paths.cache={tmp_path}")
    job = cost.job_cost(plain, prepare(plain))
    assert job.retrainings == 0 and "ROAR" not in cost.estimate(job, [])[0]
