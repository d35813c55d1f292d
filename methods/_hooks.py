"""Temporary forward hooks that rewrite module outputs, always removed in ``finally``.

LRP changes what flows *backwards* through some modules while keeping the forward
values: a forward hook replaces the module's output by ``rewrite(module, inputs,
output)``, usually a custom ``autograd.Function`` of the module's inputs whose
forward value equals the output. For in-place modules (``nn.ReLU(inplace=True)``) a
pre-hook hands the module a copy of its input, so ``rewrite`` still sees the values
the module received.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

Rewrite = Callable[[nn.Module, tuple, torch.Tensor], torch.Tensor]


@contextlib.contextmanager
def rewritten_outputs(modules: Iterable[nn.Module], rewrite: Rewrite) -> Iterator[None]:
    stash: dict[nn.Module, list[tuple]] = {}

    def before(module: nn.Module, args: tuple):
        stash.setdefault(module, []).append(args)
        if getattr(module, "inplace", False):
            return tuple(a.clone() if torch.is_tensor(a) else a for a in args)
        return None

    def after(module: nn.Module, args: tuple, output: torch.Tensor):
        return rewrite(module, stash[module].pop(), output)

    handles = []
    try:
        for module in modules:
            handles.append(module.register_forward_pre_hook(before))
            handles.append(module.register_forward_hook(after))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def recorded_outputs(modules: Iterable[nn.Module], as_leaves: bool = False) -> Iterator[dict[nn.Module, torch.Tensor]]:
    """Record each module's output (the last one when a module runs several times).

    With ``as_leaves`` the recorded output is a fresh leaf that requires grad and the rest of the
    forward pass continues from a copy of it: gradients w.r.t. the layer then need no graph below
    it (nothing upstream requires grad), and in-place modules after the layer cannot alter it.
    """
    outputs: dict[nn.Module, torch.Tensor] = {}

    def record(module: nn.Module, args: tuple, output: torch.Tensor):
        if not as_leaves:
            outputs[module] = output
            return None
        leaf = output.detach().requires_grad_(True)
        outputs[module] = leaf
        return leaf * 1  # a non-leaf copy, so later in-place ops are allowed

    handles = []
    try:
        for module in modules:
            handles.append(module.register_forward_hook(record))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
