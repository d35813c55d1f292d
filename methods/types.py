"""The explainer contract (``typing.Protocol``), which every ``conf/method/*.yaml`` instantiates into.

An :class:`Explainer` is called as ``explainer(model, inputs, targets)`` with inputs
(N, C, H, W) and one target class per input, and returns attributions of shape
(N, C, H, W) or (N, 1, H, W) on the inputs' device; it leaves the model as it found it
(mode, ``requires_grad``, hooks), also when it raises (:mod:`methods.model_state`).
``forward_passes_per_sample(shape)`` says how many images per input it passes through
the model (forward, with a backward pass where it takes gradients), for the sweep's
cost estimate before any work.

:class:`HasBaseline` is the optional part: explainers that explain f(x) - f(baseline)
(gradient x input, Integrated Gradients) give the baseline, so the conservation metric
(completeness) compares the map's sum with the right quantity; ``baseline`` returns
None when there is none (LRP: the sum is compared with f(x) itself).

:class:`HasTargetLayer` is another optional part: explainers that read one layer (the
class activation maps, Grad-CAM on a ViT's tokens) name it for inputs of a shape, so
the runner logs the layer actually used as the run parameter ``method_layer``.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class Explainer(Protocol):
    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int: ...


@runtime_checkable
class HasBaseline(Protocol):
    def baseline(self, inputs: torch.Tensor) -> torch.Tensor | None: ...


@runtime_checkable
class HasTargetLayer(Protocol):
    def chosen_layer(self, model: nn.Module, inputs: torch.Tensor) -> str: ...
