"""model.training.random_labels: default off in every model YAML, a permutation of the labels, part of the model key."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import conf
from harness.build import ConfigError
from harness.cache import model_key
from harness.training import check_training
from harness.training.loop import RANDOM_LABELS, training_labels


def test_every_model_yaml_sets_the_python_default():
    for path in sorted((Path(conf.__file__).parent / "model").glob("*.yaml")):
        assert OmegaConf.load(path).training.random_labels is RANDOM_LABELS, path.name


def test_random_labels_are_a_seeded_permutation_and_off_leaves_them_alone():
    labels = torch.arange(40) % 4
    on = OmegaConf.create({"training": {"random_labels": True}})
    assert training_labels(labels, OmegaConf.create({"training": {"random_labels": False}}), torch.Generator().manual_seed(0)) is labels
    first = training_labels(labels, on, torch.Generator().manual_seed(0))
    assert torch.equal(first, training_labels(labels, on, torch.Generator().manual_seed(0)))   # the seed decides
    assert torch.equal(first.bincount(), labels.bincount()) and (first != labels).float().mean() > 0.5   # same counts, other pairs


def test_the_switch_is_checked_and_keys_another_model(make_cfg):
    cfg = make_cfg()
    with pytest.raises(ConfigError, match="model.training.random_labels must be true or false; got 'yes'"):
        check_training(OmegaConf.merge(cfg.model, {"training": {"random_labels": "yes"}}))
    shuffled = OmegaConf.merge(cfg.model, {"training": {"random_labels": True}})
    assert model_key(shuffled, cfg.dataset, 0) != model_key(cfg.model, cfg.dataset, 0)
