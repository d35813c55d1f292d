"""Leaving a model as it was found: the guard every explainer and metric runs the model under.

``untouched(model)`` puts the model in eval mode for the block and restores every
module's training flag and every parameter's ``requires_grad`` exactly afterwards,
also when the block raises; ``frozen(model)`` also turns parameter gradients off,
since explanations need gradients with respect to the inputs only.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
        # modules() is pre-order, so a module's own call comes after every ancestor's; a module whose flag is
        # already right is skipped (its descendants are fixed by their own turns): the same final flags as
        # calling train() on every module, without re-walking each subtree (quadratic in the depth)
        for m, training in modes.items():
            if m.training != training:
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
