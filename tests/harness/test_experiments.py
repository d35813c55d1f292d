"""Every experiment file composes and passes pre-flight (as lightning-hydra-template's ``test_experiments``).

Pre-flight composes every swept value and builds every component, so an experiment
that names a removed option, a misspelled key or an out-of-range value fails here,
not an hour into a sweep. Nothing is generated, trained or logged.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import conf
from harness.build import ConfigError
from harness.models.weights import published_file
from harness.preflight import check

EXPERIMENTS = sorted(p.stem for p in (Path(conf.__file__).parent / "experiment").glob("*.yaml"))
# Experiments on files a user brings (never downloaded): without them pre-flight stops in one line naming them.
NEEDS_FILES = {"imagenet_resnet50"}
# Experiments that are one job, not a sweep (metric_reliability loops over its seeds itself, harness.reliability).
ONE_JOB = {"metric_reliability"}


def test_there_are_experiments():
    assert EXPERIMENTS


@pytest.mark.parametrize("name", [e for e in EXPERIMENTS if e not in NEEDS_FILES])
def test_experiment_composes_and_passes_preflight(name, harness_home, capsys):
    check([f"experiment={name}"])
    out = capsys.readouterr().out
    assert ("sweep estimate:" in out) != (name in ONE_JOB)   # every other experiment is a sweep; its cost is estimated before it starts


def test_imagenet_experiment_without_its_files_stops_in_one_line_naming_them(harness_home, tmp_path):
    if published_file("resnet50").is_file():
        pytest.skip("torchvision's ResNet-50 weights are in this machine's torch cache")
    with pytest.raises(ConfigError) as stop:
        check(["experiment=imagenet_resnet50"])
    assert "\n" not in str(stop.value) and "imagenet/val" in str(stop.value)   # the expected image folder
    for synset in ("n01440764", "n01443537"):   # with the images in place, the weights are named next
        (tmp_path / synset).mkdir()
        for i in range(5):
            Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / synset / f"{i}.JPEG")
    with pytest.raises(ConfigError) as stop:
        check(["experiment=imagenet_resnet50", f"dataset.root={tmp_path}"])
    assert "\n" not in str(stop.value) and str(published_file("resnet50")) in str(stop.value)
