"""The architecture as tests: layering without upward edges, private modules kept private, contracts kept.

* ``methods`` imports nothing of ours; ``metrics`` imports ``methods``' public modules but never
  ``harness``; no package imports another package's private (``_name``) module.
* Every method, metric and dataset YAML builds into an object that implements its
  ``typing.Protocol`` (:class:`methods.Explainer`, :class:`metrics.Metric`, :class:`harness.datasets.Dataset`).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import conf
from harness.build import ConfigError, build
from harness.datasets import Dataset
from methods import Explainer
from metrics import Metric

ROOT = Path(__file__).resolve().parents[1]
CONF = Path(conf.__file__).parent
OURS = ("harness", "methods", "metrics", "conf", "tests")
FORBIDDEN = {"methods": {"harness", "metrics", "conf", "tests"}, "metrics": {"harness", "conf", "tests"}}


def imports(path: Path) -> list[str]:
    """Every module name ``path`` imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package):
    bad = [(str(p.relative_to(ROOT)), name) for p in sources(package) for name in imports(p)
           if name.split(".")[0] in FORBIDDEN[package]]
    assert not bad, f"{package} must not import {sorted(FORBIDDEN[package])}: {bad}"


@pytest.mark.parametrize("package", ["harness", "methods", "metrics", "scripts"])
def test_no_package_imports_another_packages_private_module(package):
    bad = []
    for path in sources(package):
        for name in imports(path):
            parts = name.split(".")
            if parts[0] in OURS and parts[0] != package and any(part.startswith("_") and part != "__init__" for part in parts[1:]):
                bad.append((str(path.relative_to(ROOT)), name))
    assert not bad, f"private modules of other packages imported: {bad}"


def test_the_import_check_sees_an_upward_edge(tmp_path):
    """The layering test would fail on a metric that imports the harness."""
    bad = tmp_path / "bad_metric.py"
    bad.write_text("from harness import progress\nimport methods._autograd\n")
    assert "harness" in imports(bad) and "methods._autograd" in imports(bad)


CONTRACTS = {"method": Explainer, "metric": Metric, "dataset": Dataset}
NEEDS_ROOT = {"image_folder", "cifar10", "mnist"}   # read files at build time; covered by the dataset registry test


@pytest.mark.parametrize("group, name", [(g, p.stem) for g in CONTRACTS for p in sorted((CONF / g).glob("*.yaml"))
                                         if p.stem not in NEEDS_ROOT])
def test_every_component_implements_its_contract(group, name):
    node = OmegaConf.load(CONF / group / f"{name}.yaml")
    built = build(node, f"{group}.{name}", seed=0, contract=CONTRACTS[group])
    assert isinstance(built, CONTRACTS[group])


def test_a_component_without_its_contract_is_refused_in_one_line():
    node = OmegaConf.create({"_target_": "builtins.dict"})
    with pytest.raises(ConfigError) as info:
        build(node, "method", contract=Explainer)
    message = str(info.value)
    assert "does not implement the methods.types.Explainer contract" in message and "forward_passes_per_sample" in message
    assert "\n" not in message
