"""Plumbing shared by the metrics: model guarding, counter-based randomness, map and mask checks.

* argument checks are :mod:`methods.validation`'s, shared with the explainers;
* :func:`untouched` (:mod:`methods.model_state`) runs a block with the model in eval mode and restores every
  module's training flag and every parameter's ``requires_grad`` in ``finally``.
* :func:`uniform` / :func:`normal` (:mod:`methods.randomness`, shared with the explainers) draw seeded
  random numbers from a counter-based hash of (seed, stream, sample id, element index). Sample i's numbers depend only on
  its id (``context["indices"]`` where the runner gives it, else its position), never
  on the batch or chunk it is processed in, and the same on every device.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from methods.model_state import untouched  # noqa: F401  (one implementation, shared with the explainers)
from methods.randomness import normal, random_keys, uniform  # noqa: F401  (one implementation, shared with the explainers)


def sample_ids(n: int, context: dict, device: torch.device) -> torch.Tensor:
    """Each sample's id for seeding: ``context["indices"]`` when given, else 0..N-1."""
    ids = context.get("indices")
    if ids is None:
        return torch.arange(n, device=device)
    ids = torch.as_tensor(ids, device=device).long().reshape(-1)
    if ids.numel() != n:
        raise ValueError(f"context indices must hold one index per sample; got {ids.numel()} for {n} samples")
    return ids


def check_maps(name: str, inputs: torch.Tensor, attributions: torch.Tensor) -> torch.Tensor:
    """Attributions as float on the inputs' device, checked against the inputs' batch and spatial size."""
    if inputs.dim() != 4:
        raise ValueError(f"{name}: inputs must have shape (N, C, H, W); got {tuple(inputs.shape)}")
    if attributions.dim() not in (3, 4) or attributions.shape[0] != inputs.shape[0] or attributions.shape[-2:] != inputs.shape[-2:]:
        raise ValueError(f"{name}: attributions of shape {tuple(attributions.shape)} do not match inputs of shape {tuple(inputs.shape)}")
    a = attributions.detach().to(inputs.device).float()
    return a.unsqueeze(1) if a.dim() == 3 else a


def pool_channels(maps: torch.Tensor, pooling: str) -> torch.Tensor:
    """(N, C, H, W) -> (N, H, W): ``sum``, ``abs_sum``, ``max`` or ``abs_max`` over channels."""
    if pooling == "sum":
        return maps.sum(1)
    if pooling == "abs_sum":
        return maps.abs().sum(1)
    if pooling == "max":
        return maps.amax(1)
    if pooling == "abs_max":
        return maps.abs().amax(1)
    raise ValueError(f"unknown channel pooling {pooling!r}")


POOLINGS = ("sum", "abs_sum", "max", "abs_max")


def check_masks(name: str, masks, inputs: torch.Tensor) -> torch.Tensor:
    """Foreground masks as (N, H, W) bool on the inputs' device."""
    if masks is None:
        raise ValueError(f"{name} needs foreground masks in the context (masks=...); this dataset has none")
    masks = torch.as_tensor(masks, device=inputs.device)
    if masks.dim() == 4:
        if masks.shape[1] != 1:
            raise ValueError(f"{name}: masks must have shape (N, 1, H, W) or (N, H, W); got {tuple(masks.shape)}")
        masks = masks[:, 0]
    if masks.shape != (inputs.shape[0], *inputs.shape[-2:]):
        raise ValueError(f"{name}: masks of shape {tuple(masks.shape)} do not match inputs of shape {tuple(inputs.shape)}")
    return masks.bool()


@contextlib.contextmanager
def no_progress(total: int, desc: str, unit: str = "it") -> Iterator[Callable[[int], None]]:
    """The progress reporter used when the context brings none (``context["progress"]``): reports nothing."""
    yield lambda n: None


def predictions(model: nn.Module, inputs: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """argmax class of each input, under no_grad, in chunks (call inside :func:`untouched`)."""
    with torch.no_grad():
        return torch.cat([model(x).argmax(1) for x in inputs.split(chunk)])


def correctly_classified(name: str, model: nn.Module, inputs: torch.Tensor, context: dict, only_correct: bool) -> torch.Tensor:
    """(N,) bool: the samples the model classifies as their ``labels`` (all True unless ``only_correct``; an error without labels)."""
    if not only_correct:
        return torch.ones(inputs.shape[0], dtype=torch.bool, device=inputs.device)
    labels = context.get("labels")
    if labels is None:
        raise ValueError(f"{name}.only_correct=true needs the labels in the context (labels=...)")
    with untouched(model):
        return predictions(model, inputs.detach()) == torch.as_tensor(labels, device=inputs.device).long().reshape(-1)
