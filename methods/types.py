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
None when there is none (LRP: the sum is compared with f(x) itself); a :class:`PerSampleSeeded`
explainer's ``baseline(inputs, ids)`` takes the samples' ids too (``baseline=uniform`` noise is drawn per sample).

:class:`HasTargetLayer` is another optional part: explainers that read one layer (the
class activation maps, Grad-CAM on a ViT's tokens) name it for inputs of a shape, so
the runner logs the layer actually used as the run parameter ``method_layer``.

:class:`PerSampleSeeded` marks the explainers whose random draws (noise, masks, coalitions,
references, ``baseline=uniform`` noise) are made per sample from (seed, sample id) (:mod:`methods.randomness`):
they accept ``ids=`` (one id per input), so a sample's map depends only on the seed and its id,
never on the batch or shard it is explained in. The harness passes the evaluation samples'
test-split indices; called without ids they use the positions 0..N-1 of the call (so from Python
the same image at another position of the batch gets other draws). :func:`explain_samples` is the one
call site for "explain these samples": it gives the ids to the explainers that take them.

:class:`UsesTrainingImages` is for explainers whose references come from the training split
(Expected Gradients with ``background: train``): ``training_indices(n_train)`` names the training
images wanted (None: none), and the harness hands exactly those to ``use_training_images`` before
the evaluation, so only they are in memory.

:class:`DependsOnBatch` is for explainers whose map of a sample may depend on its batch (the other
images, or its position in a draw made per call): the harness then caches their maps per batch only.
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
class PerSampleSeeded(Protocol):
    seeded_per_sample: bool  # the marker: True

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor: ...

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int: ...


def explain_samples(explainer: Explainer, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                    ids: torch.Tensor | None = None) -> torch.Tensor:
    """``explainer(model, inputs, targets)``, with the samples' ``ids`` for a :class:`PerSampleSeeded` explainer."""
    if ids is not None and isinstance(explainer, PerSampleSeeded):
        return explainer(model, inputs, targets, ids=ids)
    return explainer(model, inputs, targets)


@runtime_checkable
class DependsOnBatch(Protocol):
    """An explainer whose map of a sample may depend on the other samples of the call or on its position there
    (Expected Gradients' ``background: batch``; library adapters that draw per call): ``depends_on_batch()`` says
    whether it does with its settings. The harness reuses a cached map across batchings only for explainers of this
    package that are not batch-dependent (:func:`harness.cache.cached_attribution_batch`)."""

    def depends_on_batch(self) -> bool: ...


@runtime_checkable
class UsesTrainingImages(Protocol):
    def training_indices(self, n_train: int) -> torch.Tensor | None: ...

    def use_training_images(self, images: torch.Tensor) -> None: ...


@runtime_checkable
class HasBaseline(Protocol):
    def baseline(self, inputs: torch.Tensor) -> torch.Tensor | None: ...


@runtime_checkable
class HasTargetLayer(Protocol):
    def chosen_layer(self, model: nn.Module, inputs: torch.Tensor) -> str: ...
