"""Argument checks shared by every explainer and metric: one line naming the key, the rule and the value.

Each check returns the value it accepted, so a constructor reads
``self.n_steps = check_int("integrated_gradients", "n_steps", n_steps)``. The owner
is the config name (``integrated_gradients``), so the message points at the key a
user would override (``method.n_steps`` / ``metric.deletion.steps``).
"""
from __future__ import annotations

import math
from typing import Any, TypeVar

T = TypeVar("T")


def check_int(owner: str, key: str, value: Any, minimum: int = 1, allow_none: bool = False, maximum: int | None = None) -> int | None:
    """``{owner}.{key} must be an integer >= minimum [and <= maximum] [or null]``; bools are not integers."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        extra = " or null" if allow_none else ""
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{owner}.{key} must be an integer {bound}{extra}; got {value!r}")
    return int(value)


def check_positive(owner: str, key: str, value: Any) -> float:
    """``{owner}.{key} must be a positive number`` (finite, > 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"{owner}.{key} must be a positive number; got {value!r}")
    return float(value)


def check_fraction(owner: str, key: str, value: Any) -> float:
    """``{owner}.{key} must be a fraction in (0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{owner}.{key} must be a fraction in (0, 1); got {value!r}")
    return float(value)


def check_choice(owner: str, key: str, value: T, allowed: tuple) -> T:
    """``{owner}.{key} must be one of ...``."""
    if value not in allowed:
        raise ValueError(f"{owner}.{key} must be one of {', '.join(map(str, allowed))}; got {value!r}")
    return value


def check_bool(owner: str, key: str, value: Any) -> bool:
    """``{owner}.{key} must be true or false`` (a real bool: the string "false" is not one)."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}.{key} must be true or false; got {value!r}")
    return value


def check_seed(owner: str, seed: Any) -> int | None:
    """``{owner}.seed must be a non-negative integer or null`` (null: the run's seed, filled in by the harness, else 0)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"{owner}.seed must be a non-negative integer or null (as the run's seed); got {seed!r}")
    return seed
