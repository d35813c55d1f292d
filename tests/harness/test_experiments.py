"""Every experiment file composes and passes pre-flight (as lightning-hydra-template's ``test_experiments``).

Pre-flight composes every swept value and builds every component, so an experiment
that names a removed option, a misspelled key or an out-of-range value fails here,
not an hour into a sweep. Nothing is generated, trained or logged.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import conf
from harness.preflight import check

EXPERIMENTS = sorted(p.stem for p in (Path(conf.__file__).parent / "experiment").glob("*.yaml"))


def test_there_are_experiments():
    assert EXPERIMENTS


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_passes_preflight(name, harness_home, capsys):
    check([f"experiment={name}"])
    out = capsys.readouterr().out
    assert "sweep estimate:" in out   # every experiment is a sweep; its cost is estimated before it starts
