"""Shared plumbing for gradient-based explainers.

``frozen(model)`` puts the model in eval mode with parameter gradients off for the
duration of an explanation and restores mode and ``requires_grad`` flags exactly,
also when the explanation raises. ``target_gradients`` is the one place that
computes d f_target / d x for a batch; ``batched_gradients`` does it in chunks.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


@contextlib.contextmanager
def untouched(model: nn.Module, eval_mode: bool = True) -> Iterator[nn.Module]:
    """Eval mode for the block (unless ``eval_mode=False``); every module's training flag and every
    parameter's ``requires_grad`` restored exactly afterwards, also when the block raises."""
    modes = {m: m.training for m in model.modules()}
    flags = {p: p.requires_grad for p in model.parameters()}
    try:
        if eval_mode:
            model.eval()
        yield model
    finally:
        for m, training in modes.items():
            m.train(training)
        for p, flag in flags.items():
            p.requires_grad_(flag)


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """``untouched`` with parameter gradients off: explanations need gradients w.r.t. inputs only."""
    with untouched(model):
        for p in model.parameters():
            p.requires_grad_(False)
        yield model


def check_batch(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Validate the (inputs, targets) pair of the explainer contract; return targets as a long tensor."""
    if inputs.dim() != 4:
        raise ValueError(f"explainer inputs must have shape (N, C, H, W); got {tuple(inputs.shape)}")
    targets = torch.as_tensor(targets, device=inputs.device).long().reshape(-1)
    if targets.numel() != inputs.shape[0]:
        raise ValueError(f"explainer needs one target per input; got {targets.numel()} targets for {inputs.shape[0]} inputs")
    return targets


def check_int(owner: str, key: str, value, minimum: int = 1) -> None:
    """The one validation of an explainer's integer count: ``{owner}.{key} must be an integer >= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{owner}.{key} must be an integer >= {minimum}; got {value!r}")


def check_batch_size(name: str, batch_size: int | None) -> None:
    """The one validation of every explainer's ``batch_size``-like argument."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"{name} must be a positive integer or null; got {batch_size!r}")


def check_seed(owner: str, seed: int | None) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"{owner}.seed must be an integer or null; got {seed!r}")


def cpu_generator(seed: int | None) -> torch.Generator:
    """The seeded CPU generator behind every random draw (null seed -> 0); draws are moved to the device."""
    return torch.Generator(device="cpu").manual_seed(0 if seed is None else seed)


def target_gradients(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Gradient of each sample's target logit w.r.t. its input; call inside ``frozen``."""
    x = inputs.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        selected = logits.gather(1, targets.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(selected, x)
    return grad


def batched_gradients(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int | None) -> torch.Tensor:
    """``target_gradients`` over chunks of ``batch_size`` samples (all at once when None)."""
    size = batch_size or inputs.shape[0]
    return torch.cat([target_gradients(model, x, t) for x, t in zip(inputs.split(size), targets.split(size))])
