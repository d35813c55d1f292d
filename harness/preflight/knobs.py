"""Every knob of every YAML typed and range-checked from one declaration, in one line, before any work.

Two declarations, nothing case by case:

* a component's knobs (``dataset``, ``method``, ``metric.*``, ``model.network``, and any
  nested node with a ``_target_``) are typed by **its constructor's signature**: the
  annotation of each argument (``int``, ``float``, ``bool``, ``str``, ``X | None``),
  or, where there is none, the type of its Python default when that is a number or a
  bool; a list of numbers (``list[float]``, ``tuple[int, ...]``, ``Sequence[float]``, or a
  default such as ``(10, 20)``) takes a list of such numbers (it equals the YAML's, tests/test_defaults.py; an unannotated string default
  such as ``baseline="zero"`` may also take numbers or lists, so it types nothing). ``**settings`` forwarded to a base class are typed by the
  base class's signature. Ranges stay where they are declared, in the constructor's own
  checks, which pre-flight runs when it builds the component;
* the run-wide knobs (``seed``, ``eval.*``, ``tracking.*``, ``cache.*``,
  ``model.training.*``) are declared once in :data:`RUN_KNOBS`, type and range.

Types: an ``int`` knob takes an integer (not ``2.5``, not ``true``), a ``float`` knob a
finite number (never NaN or ±inf: "no limit" is spelled ``null`` where a knob allows it),
a ``bool`` knob ``true``/``false``, a ``str`` knob a non-empty string. The messages say
what is allowed (:func:`check_value`).
"""
from __future__ import annotations

import collections.abc
import functools
import inspect
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from harness.build import ConfigError
from harness.datasets import SAMPLING

SEED_MAX = 2**63 - 1  # torch generators take a signed 64-bit seed


@dataclass(frozen=True)
class Knob:
    """One run-wide knob: its type (``int``, ``float``, ``bool``, ``str``), range, whether null is allowed."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False    # low itself excluded
    high_open: bool = False   # high itself excluded
    nullable: bool = False
    choices: tuple[str, ...] = ()

    def allowed(self) -> str:
        if self.choices:
            text = f"one of {', '.join(self.choices)}"
        elif self.kind is bool:
            text = "true or false"
        elif self.kind is str:
            text = "a non-empty string"
        else:
            text = "an integer" if self.kind is int else "a finite number"
            if self.low is not None and self.high is not None:
                text += f" in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"
            elif self.low is not None:
                text += f" {'>' if self.low_open else '>='} {_num(self.low)}"
        return text + (" or null" if self.nullable else "")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


RUN_KNOBS: dict[str, Knob] = {
    "seed": Knob(int, 0, SEED_MAX),
    "eval.n_samples": Knob(int, 1),
    "eval.batch_size": Knob(int, 1),
    "eval.target": Knob(str, choices=("predicted", "label")),
    "eval.sample": Knob(str, choices=SAMPLING),
    "eval.shards": Knob(int, 1),
    "eval.shard": Knob(int, 0),
    "eval.num_workers": Knob(int, 0),
    "tracking.experiment": Knob(str),
    "tracking.run_name": Knob(str, nullable=True),
    "tracking.heatmaps": Knob(int, 0),
    "cache.datasets": Knob(bool),
    "cache.attributions": Knob(bool),
    "cache.lock_timeout_s": Knob(float, 0, low_open=True),
    "sweep.resume": Knob(bool),
    "model.training.optimizer": Knob(str, choices=("adam", "adamw", "sgd")),
    "model.training.momentum": Knob(float, 0, 1, high_open=True),
    "model.training.epochs": Knob(int, 0),
    "model.training.batch_size": Knob(int, 1),
    "model.training.lr": Knob(float, 0, low_open=True),
    "model.training.weight_decay": Knob(float, 0),
    "model.training.augmentation.horizontal_flip": Knob(bool),
    "model.training.augmentation.max_shift": Knob(int, 0),
    "model.training.random_labels": Knob(bool),
}


# Method and metric knobs measured in pixels of the image: at most the dataset's image size.
PIXEL_KNOBS = ("patch_size", "cell_size", "stride")


def type_ok(value: Any, kind: type | ListOf) -> bool:
    """Whether ``value`` is of the knob type ``kind`` (bool is not an int; a float must be finite; a str non-empty)."""
    if isinstance(kind, ListOf):
        return isinstance(value, list | tuple | ListConfig) and all(type_ok(v, kind.kind) for v in value)
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind is str:
        return isinstance(value, str) and value.strip() != ""
    return True


def check_value(where: str, value: Any, knob: Knob) -> None:
    """One knob's value against its declaration; a one-line :class:`ConfigError` saying what is allowed."""
    if value is None:
        if knob.nullable:
            return
        raise ConfigError(f"{where} must be {knob.allowed()}; got null")
    bad = not type_ok(value, knob.kind) or (knob.choices and value not in knob.choices)
    if not bad and knob.kind in (int, float):
        bad = (knob.low is not None and (value <= knob.low if knob.low_open else value < knob.low)) or \
              (knob.high is not None and (value >= knob.high if knob.high_open else value > knob.high))
    if bad:
        raise ConfigError(f"{where} must be {knob.allowed()}; got {_shown(value)}")


def _shown(value: Any) -> str:
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value)
    return repr(value)


def check_run_knobs(cfg: DictConfig) -> None:
    """Every :data:`RUN_KNOBS` entry present in ``cfg``."""
    for key, knob in RUN_KNOBS.items():
        missing = object()
        value = OmegaConf.select(cfg, key, default=missing)
        if value is not missing:
            check_value(key, value, knob)


# -- component knobs: typed by the constructor's signature ---------------------------------------
@dataclass(frozen=True)
class ListOf:
    """A list knob of numbers: ``list[float]``, ``tuple[int, ...]``, ``Sequence[float]``, or a default such as ``(10, 20)``."""

    kind: type


_NAMES = {int: "an integer", float: "a finite number", bool: "true or false", str: "a non-empty string", type(None): "null",
          ListOf(int): "a list of integers", ListOf(float): "a list of finite numbers"}
_SEQUENCES = (list, tuple, collections.abc.Sequence)


def _members(annotation: Any) -> tuple[Any, ...] | None:
    """The plain types an annotation allows (``int | None`` -> (int, NoneType)); None when it is anything richer."""
    if annotation in _NAMES:
        return (annotation,)
    if typing.get_origin(annotation) in _SEQUENCES:
        element = typing.get_args(annotation)[:1]
        return (ListOf(element[0]),) if element and element[0] in (int, float) else None
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        parts = [_members(a) for a in typing.get_args(annotation)]
        return None if any(p is None for p in parts) else tuple(t for p in parts for t in p)  # type: ignore[union-attr]
    return None


@functools.cache
def signature_types(target: Any) -> dict[str, tuple[Any, ...]]:
    """``{argument: allowed plain types}`` of a class's constructor (and its bases' for ``**kwargs``) or a function."""
    found: dict[str, tuple[Any, ...]] = {}
    functions = [c.__init__ for c in inspect.getmro(target) if "__init__" in vars(c)] if inspect.isclass(target) else [target]
    for function in functions:
        try:
            signature = inspect.signature(function)
            hints = typing.get_type_hints(function)
        except Exception:  # noqa: BLE001 - an unresolvable annotation types nothing
            continue
        for name, parameter in signature.parameters.items():
            if name in found or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL) or name == "self":
                continue
            allowed = _members(hints[name]) if name in hints else None
            if allowed is None and name not in hints and type(parameter.default) in (int, float, bool):
                allowed = (float,) if type(parameter.default) is float else (type(parameter.default),)
            if allowed is None and name not in hints and isinstance(parameter.default, list | tuple) and parameter.default \
                    and all(type(v) in (int, float) for v in parameter.default):
                allowed = (ListOf(float),)  # a default list of numbers: a list of numbers
            if allowed is not None:
                found[name] = allowed
        if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            break  # nothing forwarded further up
    return found


def check_component_knobs(node: Any, where: str) -> None:
    """Type every key of a component node (and of nested component nodes) by its target's signature."""
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return
    try:
        target = get_object(str(node._target_))
    except Exception:  # noqa: BLE001 - build reports an unknown _target_ in one line
        return
    types_of = signature_types(target)
    for key in node:
        if key == "_target_":
            continue
        value = node[key]
        if isinstance(value, DictConfig):
            check_component_knobs(value, f"{where}.{key}")
            continue
        allowed = types_of.get(str(key))
        if allowed is None or (value is None and type(None) in allowed):
            continue
        if not any(type_ok(value, kind) for kind in allowed if kind is not type(None)):
            wanted = " or ".join(_NAMES[kind] for kind in allowed)
            if value is None:
                raise ConfigError(f"{where}.{key} must be {wanted}; got null")
            raise ConfigError(f"{where}.{key} must be {wanted}; got {_shown(value)}")


def check_knobs(cfg: DictConfig) -> None:
    """Every run-wide knob (:data:`RUN_KNOBS`) and every component knob of ``cfg`` (types; the constructors check ranges)."""
    check_run_knobs(cfg)
    check_component_knobs(cfg.get("dataset"), "dataset")
    check_component_knobs(cfg.get("method"), "method")
    for name, node in (cfg.get("metric") or {}).items():
        check_component_knobs(node, f"metric.{name}")
    model = cfg.get("model")
    if isinstance(model, DictConfig):
        check_component_knobs(model.get("network"), "model.network")
