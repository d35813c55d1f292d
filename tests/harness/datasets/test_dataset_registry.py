"""Every dataset config composes and builds through pre-flight; the new ones run end to end."""
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import conf
from harness.build import ConfigError
from harness.preflight import check
from harness.runner import run

DATASETS = sorted(p.stem for p in (Path(conf.__file__).parent / "dataset").glob("*.yaml"))
NEEDS_FILES = {
    "image_folder": "dataset.root is required: the folder of class folders",
    "cifar10": "dataset.root: cifar10 files not found under ",
    "mnist": "dataset.root: mnist files not found under ",
}


def test_the_dataset_registry_holds_the_issue_datasets():
    assert {"spurious_shapes", "decoy", "photos", "image_folder", "cifar10", "mnist"} <= set(DATASETS)


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_config_passes_preflight_or_names_what_it_needs(name, harness_home, capsys):
    if name in NEEDS_FILES:
        with pytest.raises(ConfigError) as info:
            check([f"dataset={name}"])
        assert NEEDS_FILES[name] in str(info.value) and "\n" not in str(info.value)
    else:
        check([f"dataset={name}"])
    if name == "photos":  # no masks: the default selection leaves the mask-based metric out, with one notice
        notice = "notice: dataset Photos lacks what some default metrics need; left out spurious_background (needs foreground masks)"
        assert capsys.readouterr().out.count(notice) == 1


def test_a_chosen_metric_the_dataset_cannot_serve_still_stops_in_one_line(harness_home):
    with pytest.raises(ConfigError, match=r"^metric spurious_background needs foreground masks, which dataset Photos does not have"):
        check(["dataset=photos", "metric=[deletion,spurious_background]"])


@pytest.mark.slow
def test_grey_decoy_data_runs_end_to_end_and_logs_the_decoy_accuracies(make_cfg):
    outcome = run(make_cfg("dataset=decoy", "model=mlp", "model.network.hidden=[32]"))
    metrics = MlflowClient().get_run(outcome.run_id).data.metrics
    assert {"deletion", "test_accuracy/label_shade", "test_accuracy/no_patch", "worst_group_accuracy"} <= set(metrics)


@pytest.mark.slow
def test_photos_run_end_to_end(make_cfg):
    cfg = make_cfg("dataset=photos", "dataset.image_size=32", "dataset.labels=photos", "model.training.epochs=1", "metric=[deletion,insertion]",
                   "eval.n_samples=5", "tracking.heatmaps=5", tiny=False)
    outcome = run(cfg)
    assert len(outcome.results["deletion"].scores) == 5
