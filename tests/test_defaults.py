"""One source of defaults: every value in a ``conf/`` YAML equals its ``_target_``'s Python default.

So ``methods.IntegratedGradients()`` from a notebook and ``python -m harness
method=integrated_gradients`` give the same numbers. Each node with a ``_target_``
(nested ones too, such as ``model.network``) is compared key by key with the
defaults of the class's constructor, following ``**kwargs`` into the base classes
(``Deletion(**kwargs)`` -> ``AblationCurve``); a key the constructor does not take
is an error too. Values filled in at build time (``seed: null``: the run's seed;
``in_channels``/``num_classes``/``image_size`` of a network: from the dataset) and
interpolations are left out.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from hydra.utils import get_object
from omegaconf import OmegaConf

import conf

CONF = Path(conf.__file__).parent
MISSING = object()


def python_defaults(target: Any) -> tuple[dict[str, Any], bool]:
    """``({parameter: default}, takes_any_keyword)``; a class's ``**kwargs`` is followed into its bases."""
    defaults: dict[str, Any] = {}
    functions = [klass.__init__ for klass in target.__mro__ if "__init__" in vars(klass)] if inspect.isclass(target) else [target]
    open_ended = True
    for function in functions:
        if function is object.__init__:
            break
        parameters = inspect.signature(function).parameters
        for name, p in parameters.items():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self":
                defaults.setdefault(name, MISSING if p.default is p.empty else p.default)
        open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        if not open_ended:
            break
    return defaults, open_ended


def plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value


def mismatches(node: dict, where: str) -> list[str]:
    """Where a YAML node with ``_target_`` disagrees with its target's defaults (recursing into nested targets)."""
    found = []
    for key, value in node.items():
        if isinstance(value, dict) and "_target_" in value:
            found += mismatches(value, f"{where}.{key}")
    if "_target_" not in node:
        return found
    defaults, open_ended = python_defaults(get_object(node["_target_"]))
    for key, value in node.items():
        if key == "_target_" or (isinstance(value, dict) and "_target_" in value):
            continue
        if isinstance(value, str) and value.startswith("${"):
            continue  # an interpolation: its value comes from elsewhere in the config
        if key not in defaults:
            if not open_ended:
                found.append(f"{where}.{key}: {node['_target_']} takes no argument {key!r}")
            continue
        default = defaults[key]
        if default is MISSING:
            continue  # required in Python: the YAML is the only default
        if plain(value) != plain(default):
            found.append(f"{where}.{key}: YAML {value!r} != Python default {default!r} ({node['_target_']})")
    return found


# Every YAML of the tree, except the launcher configs: those set our values for Hydra's plugin classes on purpose.
YAMLS = [p for p in sorted(CONF.rglob("*.yaml")) if "launcher" not in p.parts]


@pytest.mark.parametrize("path", YAMLS, ids=[str(p.relative_to(CONF)) for p in YAMLS])
def test_yaml_values_equal_python_defaults(path):
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    assert not mismatches(node, str(path.relative_to(CONF).with_suffix("")))


class _Example:
    def __init__(self, steps: float = 0.05, abpc: bool = False, seed: int | None = None) -> None: ...


class _Child(_Example):
    def __init__(self, substrate: str = "blur", **kwargs) -> None:
        super().__init__(**kwargs)


def test_the_component_yamls_are_all_checked():
    groups = {p.relative_to(CONF).parts[0] for p in YAMLS}
    assert {"method", "metric", "dataset", "model", "experiment", "tracking", "config.yaml"} <= groups


def test_a_default_changed_on_one_side_only_is_caught():
    target = f"{__name__}._Example"
    assert mismatches({"_target_": target, "steps": 0.05, "abpc": False, "seed": None}, "x") == []
    assert mismatches({"_target_": target, "steps": 0.05, "abpc": True}, "x") == [
        f"x.abpc: YAML True != Python default False ({target})"]
    assert mismatches({"_target_": target, "stepz": 0.05}, "x") == [f"x.stepz: {target} takes no argument 'stepz'"]
    child = f"{__name__}._Child"   # **kwargs is followed into the base class
    assert mismatches({"_target_": child, "substrate": "blur", "steps": 0.05}, "x") == []
    assert mismatches({"_target_": child, "steps": 0.1}, "x") == [f"x.steps: YAML 0.1 != Python default 0.05 ({child})"]
