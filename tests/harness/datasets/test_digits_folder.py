"""End to end on real data: a folder of 1-channel PNGs made from scikit-learn's digits, normalisation computed, stratified samples."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from PIL import Image

import harness
from harness.api import compose_config
from harness.build import ConfigError
from harness.cache import config_hash
from harness.datasets import ImageFolder, evaluation_indices
from harness.preflight import check

PER_CLASS = 12


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    """root/<digit>/<i>.png, 12 grey 8x8 images per digit from sklearn.datasets.load_digits (values 0..16 scaled to 0..255)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("digits")
    for label in range(10):
        (root / str(label)).mkdir()
        for k, i in enumerate(np.flatnonzero(digits.target == label)[:PER_CLASS]):
            Image.fromarray((digits.images[i] * 255 / 16).round().astype(np.uint8), mode="L").save(root / str(label) / f"{k:02d}.png")
    return root


def test_normalisation_is_computed_from_the_training_images(digits_folder):
    d = ImageFolder(digits_folder, image_size=8, channels=1, test_fraction=0.25)
    assert d.normalisation_pending()
    pixels = np.concatenate([np.asarray(Image.open(path), dtype=np.float64).ravel() / 255 for path, _, _ in d.files["train"]])
    assert d.mean.tolist() == pytest.approx([pixels.mean()], abs=1e-5) and d.std.tolist() == pytest.approx([pixels.std()], abs=1e-5)
    train = d.split("train")
    assert abs(float(train.images.mean())) < 1e-4 and float(train.images.std(unbiased=False)) == pytest.approx(1, abs=1e-4)
    with pytest.raises(ValueError, match="give both"):
        ImageFolder(digits_folder, image_size=8, channels=1, mean=[0.5])


def test_stratified_evaluation_samples_cover_every_class_and_follow_the_seed():
    labels = torch.arange(10).repeat_interleave(3)  # sorted, as a folder lists them
    picked = evaluation_indices(labels, 10, seed=0)
    assert sorted(labels[picked].tolist()) == list(range(10)) and picked.tolist() == sorted(picked.tolist())
    assert not torch.equal(picked, evaluation_indices(labels, 10, seed=1)) and torch.equal(picked, evaluation_indices(labels, 10, seed=0))
    assert evaluation_indices(labels, 4, how="first").tolist() == [0, 1, 2, 3]


@pytest.mark.slow
def test_a_digits_folder_runs_end_to_end(digits_folder, harness_home, capsys):
    overrides = ["dataset=image_folder", f"dataset.root={digits_folder}", "dataset.channels=1", "dataset.image_size=8",
                 "dataset.test_fraction=0.25", "model.network.width=4", "model.training.epochs=1", "eval.n_samples=10",
                 "tracking.heatmaps=2", "metric.deletion.steps=0.25", "metric.insertion.steps=0.25"]
    result = harness.run(overrides)
    assert "left out spurious_background (needs foreground masks); running metric=[deletion,insertion]" in capsys.readouterr().out
    assert list(result.summary["metric"]) == ["deletion", "insertion"]
    client = MlflowClient()
    tags = client.get_run(result.run_id).data.tags
    assert tags["harness.normalisation"].startswith("mean [") and tags["harness.normalisation"].endswith("computed from the training images")
    assert "left out spurious_background" in tags["harness.notices"]
    assert tags["harness.config_hash"] == config_hash(compose_config(overrides))  # the composed config's, as a resumed sweep computes it
    picked = json.loads(open(client.download_artifacts(result.run_id, "eval_indices.json")).read())
    test = ImageFolder(digits_folder, image_size=8, channels=1, test_fraction=0.25, mean=[0], std=[1]).split("test")
    assert sorted(test.labels[picked].tolist()) == list(range(10))  # all ten digits, not the first ten files (all zeros)
    with pytest.raises(ConfigError, match=r"^metric spurious_background needs foreground masks, which dataset ImageFolder does not have"):
        check([*overrides[:-2], "metric=[spurious_background]"])
