"""``python -m harness.meta``: its command line (the run itself is covered by tests/metrics/test_meta_evaluation.py)."""
from __future__ import annotations

import pytest

from harness.build import ConfigError
from harness.meta import parse


def test_parse_splits_methods_meta_arguments_and_overrides():
    methods, meta, rest = parse(["methods=[saliency,random]", "meta.n_perturbations=2", "meta.minor_std=0.02", "metric=[deletion]", "seed=3"])
    assert methods == ["saliency", "random"] and meta == {"n_perturbations": 2, "minor_std": 0.02} and rest == ["metric=[deletion]", "seed=3"]


@pytest.mark.parametrize("argv, match", [
    (["methods=saliency"], "at least two methods"),
    (["methods=saliency,random", "method=gradcam"], "methods=A,B"),
    (["methods=saliency,random", "meta.k=3"], "unknown key 'meta.k'"),
    (["methods=saliency,random", "meta.space=latent"], "meta.space must be model or input"),
])
def test_parse_errors_are_one_line(argv, match):
    with pytest.raises(ConfigError, match=match) as err:
        parse(argv)
    assert "\n" not in str(err.value)


def test_meta_refuses_roar_in_one_line_before_training(harness_home):
    from harness.meta import run
    from tests.conftest import TINY

    with pytest.raises(ConfigError, match="metric roar is not meta-evaluated") as err:
        run(["saliency", "random"], [*TINY, "metric=[roar]"])
    assert "\n" not in str(err.value)
