"""Bad command lines stop before any work with one line naming what is allowed."""
import os
import subprocess
import sys

import pytest

from harness.build import ConfigError
from harness.preflight import check

BAD = [
    (["method=salency"], "unknown method 'salency'; allowed: "),
    (["metric=[deletion,insertoin]"], "unknown metric 'insertoin'; allowed: "),
    (["dataset.spurious_corelation=0.5"], "unknown key 'dataset.spurious_corelation': dataset has "),
    (["dataset.spurious_correlation=1.5"], "dataset.spurious_correlation must be in [0, 1]; got 1.5"),
    (["metric.deletion.steps=-1"], "deletion.steps must be in (0, 1] (the fraction of features changed per step); got -1"),
    (["method=integrated_gradients", "method.n_steps=-3"], "integrated_gradients.n_steps must be an integer in [1, 4096]; got -3"),
    (["eval.n_samples=0"], "eval.n_samples must be an integer >= 1; got 0"),
    (["metric=[]"], "metric selects no metric"),
    (["tracking.uri=http://127.0.0.1:9"], "tracking server http://127.0.0.1:9 is unreachable"),
    (["-m", "method=saliency,integrated_gradent"], "unknown method 'integrated_gradent'"),
    (["-m", "dataset.spurious_correlation=0.5,2"], "dataset.spurious_correlation must be in [0, 1]; got 2"),
    (["model.training.epochs=-1"], "model.training.epochs must be an integer >= 0; got -1"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_naming_what_is_allowed(argv, message, harness_home):
    with pytest.raises(ConfigError) as info:
        check(argv)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_good_sweep_passes(harness_home):
    check(["-m", "method=saliency,integrated_gradients", "metric=[deletion]", "hydra/launcher=basic"])


def test_unknown_option_lists_the_choices(harness_home):
    with pytest.raises(ConfigError, match="allowed: .*integrated_gradients.*saliency"):
        check(["method=nope"])


def test_command_line_exits_non_zero_with_one_line_before_any_work(harness_home, tmp_path):
    env = dict(os.environ, HARNESS_HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-m", "harness", "dataset.spurious_correlation=-0.1"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: dataset.spurious_correlation must be in [0, 1]; got -0.1"
    # Nothing was computed or logged: no model cache, no runs, no MLflow store.
    assert not (tmp_path / "home" / "cache").exists()
    assert not (tmp_path / "home" / "mlflow.db").exists()


def test_values_swept_by_an_experiment_file_are_checked(harness_home):
    check(["experiment=method_comparison"])
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        check(["experiment=method_comparison", "hydra.sweeper.params.method=saliency,nope"])


def test_metric_needing_masks_on_a_dataset_without_them_stops_before_work(harness_home):
    with pytest.raises(ConfigError, match="metric spurious_background needs foreground masks, which dataset Photos does not have"):
        check(["dataset=photos", "metric=[deletion,spurious_background]"])
    with pytest.raises(ConfigError, match=r"metric background_gap needs background-swapped test images, which dataset DecoyShapes does not have; "
                                         r"leave it out \(metric=\[deletion,insertion\]\)"):
        check(["dataset=decoy", "metric=[background_gap]"])
