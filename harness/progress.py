"""Progress bars with rate and ETA (tqdm), for training epochs, attribution batches and metric chunks.

Bars go to stderr and show on a terminal; ``HARNESS_PROGRESS=1`` forces them on (e.g.
into a Slurm log), ``HARNESS_PROGRESS=0`` off. Metrics get :func:`counter` through their
context (``context["progress"]``), not by importing this module. A sweep's own progress
line is :mod:`harness.sweeps.progress`.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def enabled() -> bool:
    setting = os.environ.get("HARNESS_PROGRESS", "").strip().lower()
    if setting in ("1", "true", "yes", "on"):
        return True
    if setting in ("0", "false", "no", "off"):
        return False
    return sys.stderr.isatty()


def bar(iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterable[T]:
    """``iterable`` with a progress bar (rate and ETA) when progress is enabled."""
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True,
                mininterval=1.0, disable=not enabled(), file=sys.stderr)


@contextlib.contextmanager
def counter(total: int, desc: str, unit: str = "it"):
    """A manual bar: yields ``tick(n)`` that advances it by n (for loops whose steps vary in size)."""
    with tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, mininterval=1.0,
              disable=not enabled(), file=sys.stderr) as pbar:
        yield pbar.update
