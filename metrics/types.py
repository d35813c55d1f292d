"""The metric contract (``typing.Protocol``), which every ``conf/metric/*.yaml`` instantiates into.

A :class:`Metric` is called as ``metric(model, inputs, targets, attributions, **context)``
and returns a :class:`metrics.result.MetricResult` with one score per sample (NaN where
the score is undefined). It leaves the model as it found it. Two attributes serve the
harness before any work:

* ``needs``: what the metric requires of the data beyond inputs and targets,
  ``"masks"`` (exact foreground masks) and/or ``"background_variants"`` (background-swapped
  test images); pre-flight checks them against the dataset;
* ``forward_passes_per_sample(shape)``: images per input passed through the model in
  one call, for the sweep's cost estimate.

The context the harness passes: ``labels``, ``masks``, ``groups``, ``explainer`` (the
run's :class:`methods.Explainer`), ``mean``/``std`` (the dataset's normalisation),
``dataset`` (for metrics that need other views of the data, see :class:`BackgroundVariants`),
``indices`` (each input's index in the test split, which seeds its random draws),
``progress`` (a :class:`Progress`; metrics never import the harness to report progress) and
``retrain`` (a :class:`Retrain`: the run's architecture retrained on modified training
images, cached; what ROAR needs, and the one way a metric trains a model without
importing the harness).
Every key is optional for a metric that does not use it.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from metrics.result import MetricResult

NEEDS = ("masks", "background_variants")


@runtime_checkable
class Metric(Protocol):
    """What every metric implements: ``needs``, ``forward_passes_per_sample`` and the call (module docstring)."""

    needs: tuple[str, ...]

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor,
                 **context) -> MetricResult: ...

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int: ...


class Progress(Protocol):
    """``with progress(total, desc, unit) as tick: ... tick(n)``: reports n more of ``total`` done."""

    def __call__(self, total: int, desc: str, unit: str = "it") -> AbstractContextManager[Callable[[int], None]]: ...


@runtime_checkable
class Retrain(Protocol):
    """``retrain(images, identity)``: the run's model architecture trained from scratch, from the run's seed and
    with its training settings, on ``images()`` (the training split modified by the metric, one image per
    ``train_labels``), in eval mode on the run's device.

    ``images`` is called only when no model for ``identity`` is cached, so a cached model costs no
    attributions of the training images. ``identity`` (plain, JSON-able values) must say everything the
    metric did to the images (e.g. ``{"metric": "roar", "fraction": 0.3, ...}``); the harness adds the
    method's config and the key of the model that made the attributions to the cache key.
    """

    train_images: torch.Tensor   # (N, C, H, W) normalised training images the run's model was trained on
    train_labels: torch.Tensor   # (N,) long

    def __call__(self, images: Callable[[], torch.Tensor], identity: dict) -> nn.Module: ...


@runtime_checkable
class BackgroundVariants(Protocol):
    """A dataset with background-swapped versions of its splits (what ``needs = ("background_variants",)`` asks for)."""

    VARIANTS: tuple[str, ...]

    def split(self, name: str, variant: str = "original"): ...

    def samples(self, name: str, indices, variant: str = "original"): ...  # the samples at ``indices`` of a split (or variant)
