"""The config tree is the registry: every option composes, and lands where the runner looks for it."""
from pathlib import Path

import pytest

import conf

CONF = Path(conf.__file__).parent
METRICS = sorted(p.stem for p in (CONF / "metric").glob("*.yaml"))
METHODS = sorted(p.stem for p in (CONF / "method").glob("*.yaml"))


@pytest.mark.parametrize("name", METRICS)
def test_each_metric_composes_under_its_own_name(make_cfg, name):
    cfg = make_cfg(f"metric=[{name}]")
    assert list(cfg.metric) == [name]
    assert "_target_" in cfg.metric[name]


def test_metrics_multiselect_keeps_each_metric_apart(make_cfg):
    cfg = make_cfg(f"metric=[{','.join(METRICS)}]")
    assert list(cfg.metric) == METRICS


@pytest.mark.parametrize("name", METHODS)
def test_each_method_composes(make_cfg, name):
    assert "_target_" in make_cfg(f"method={name}").method


def test_configs_ship_inside_the_package():
    assert (CONF / "config.yaml").is_file() and METHODS and METRICS
