"""Arguments are documented once, in the class docstring (Captum's style), for every key a YAML sets.

Each ``_target_`` a ``conf/{method,metric,dataset,model}`` YAML names must have a
docstring with an ``Args:`` section in which every key of that YAML appears as
``key (type...): ...`` with its default and allowed values, so ``help(methods.Occlusion)``
says what ``method.patch_size`` does. Classes that pass ``**kwargs`` to a base class
may leave the shared arguments to the base's docstring. Every package, and every
module under ``harness/``, ``methods/`` and ``metrics/``, has a module docstring.
"""
from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
from hydra.utils import get_object
from omegaconf import OmegaConf

import conf

CONF = Path(conf.__file__).parent
ROOT = Path(__file__).resolve().parents[1]
FILLED_BY_THE_HARNESS = {"in_channels", "num_classes", "image_size"}   # a network's sizes come from the dataset


def targets(node: dict, where: str):
    """(where, target, keys) of every node with a ``_target_``, nested ones too."""
    for key, value in node.items():
        if isinstance(value, dict):
            yield from targets(value, f"{where}.{key}")
    if "_target_" in node:
        yield where, node["_target_"], [k for k, v in node.items() if k != "_target_" and not (isinstance(v, dict) and "_target_" in v)]


def documented(target) -> str:
    """The Args sections of ``target``'s docstring and, for ``**kwargs`` classes, of its bases'."""
    owners = [k for k in target.__mro__ if k is not object] if inspect.isclass(target) else [target]
    sections = []
    for owner in owners:
        doc = inspect.cleandoc(owner.__doc__ or "")
        if "Args:" in doc:
            sections.append(doc.split("Args:", 1)[1])
    return "\n".join(sections)


NODES = [(f"{p.parent.name}/{p.stem}{where}", target, keys)
         for group in ("method", "metric", "dataset", "model") for p in sorted((CONF / group).glob("*.yaml"))
         for where, target, keys in targets(OmegaConf.to_container(OmegaConf.load(p), resolve=False), "")]


@pytest.mark.parametrize("where, target, keys", NODES, ids=[n[0] for n in NODES])
def test_every_yaml_key_is_documented_in_its_class(where, target, keys):
    args = documented(get_object(target))
    assert args, f"{target} has no 'Args:' section in its docstring"
    missing = [k for k in keys if k not in FILLED_BY_THE_HARNESS and not re.search(rf"^\s*{re.escape(k)} \(", args, re.M)]
    assert not missing, f"{target}: Args does not document {missing} (as 'name (type): ... Default: ...')"


MODULES = [p for package in ("harness", "methods", "metrics") for p in sorted((ROOT / package).rglob("*.py"))]


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_every_module_says_what_it_is(path):
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(ROOT)} has no module docstring"
