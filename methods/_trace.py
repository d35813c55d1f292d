"""Finding and tapping the feature map that feeds a model's head, whatever wrote it (module or functional call).

Module hooks see only module outputs; a map written by ``F.relu`` in ``forward``
(DenseNet) or changed in place after its module returned (``out += identity``) is
invisible to them. ``trace`` runs one forward pass under a ``TorchFunctionMode``
that records every torch call (its function, which call of that function it was,
its tensor arguments and its result) and every module's output, so the head's
input can be found by what happened to it; ``Tap`` then replaces the result of that
same call (the k-th call of the same function) in later forward passes by a leaf
that requires grad, so gradients with respect to the map need no graph below it.
The forward pass of a model must call the same functions in the same order on any
batch of the same image shape (true of every torchvision network).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

_GLOBAL_POOLS = {F.adaptive_avg_pool2d, F.adaptive_max_pool2d}
_REDUCTIONS = {torch.Tensor.mean, torch.mean, torch.Tensor.sum, torch.sum, torch.Tensor.amax, torch.amax}


def _name(func) -> str:
    return getattr(func, "__name__", None) or str(func)


@dataclass
class Call:
    func: object
    k: int
    inputs: list
    output: torch.Tensor


@dataclass
class Trace:
    calls: list[Call] = field(default_factory=list)
    module_outputs: list[tuple[str, torch.Tensor, int]] = field(default_factory=list)  # (name, output, calls so far), in completion order
    attention_inputs: list[tuple[int, torch.Tensor]] = field(default_factory=list)  # (calls so far, query)

    def writer(self, tensor: torch.Tensor) -> int | None:
        """Index of the last call that returned this very tensor (in-place calls return their input)."""
        for i in range(len(self.calls) - 1, -1, -1):
            if self.calls[i].output is tensor:
                return i
        return None

    def module_name(self, tensor: torch.Tensor, after: int = -1) -> str | None:
        """The last module to complete that returned this tensor (the outermost one), completing after call ``after``."""
        for name, out, done in reversed(self.module_outputs):
            if out is tensor and done > after:
                return name
        return None


class _Recorder(TorchFunctionMode):
    def __init__(self, trace: Trace) -> None:
        super().__init__()
        self.trace, self.counts = trace, {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        k = self.counts.get(func, 0)
        self.counts[func] = k + 1
        if torch.is_tensor(out):
            inputs = [a for a in (*args, *kwargs.values()) if torch.is_tensor(a)]
            self.trace.calls.append(Call(func, k, inputs, out))
        return out


def trace(model: nn.Module, inputs: torch.Tensor) -> Trace:
    """One traced forward pass of one input, with gradients on as in the explainers' passes (so the same code path)."""
    record = Trace()
    names = {m: n for n, m in model.named_modules()}
    handles = [m.register_forward_hook(lambda m, a, o: record.module_outputs.append((names[m], o, len(record.calls))) if torch.is_tensor(o) else None)
               for m in model.modules()]
    handles += [m.register_forward_pre_hook(lambda m, a: record.attention_inputs.append((len(record.calls), a[0])) if a else None)
                for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    try:
        with torch.enable_grad(), _Recorder(record):
            model(inputs[:1].detach().requires_grad_(True))
    finally:
        for h in handles:
            h.remove()
    return record


@dataclass(frozen=True)
class Target:
    """Where the head's feature map comes from: the ``k``-th call of ``func``; ``grid`` (h, w) for token maps."""

    func: object
    k: int
    name: str
    tokens: bool = False
    grid: tuple[int, int] | None = None


def _is_global_pool(call: Call) -> bool:
    """Pooling of a 4-D map to 1x1 per channel: adaptive pooling, full-size pooling, a spatial mean/sum/max."""
    x, out = (call.inputs[0] if call.inputs else None), call.output
    if x is None or x.dim() != 4:
        return False
    pooled = out.shape == (*x.shape[:2], 1, 1) or out.shape == x.shape[:2]
    if call.func in _GLOBAL_POOLS or call.func in _REDUCTIONS:
        return pooled
    return call.func in (F.avg_pool2d, F.max_pool2d) and pooled and x.shape[-2:] != (1, 1)


def _is_flattening(call: Call) -> bool:
    x = call.inputs[0] if call.inputs else None
    return x is not None and x.dim() == 4 and call.output.dim() < 4 and call.output.shape[0] == x.shape[0]


def head_input(record: Trace, owner: str) -> Target:
    """The map that feeds the head (module docstring of :mod:`methods.cam`), as a call to tap."""
    pools = [i for i, c in enumerate(record.calls) if _is_global_pool(c)]
    flats = [i for i, c in enumerate(record.calls) if _is_flattening(c) and c.inputs[0].shape[-2:] != (1, 1)]
    ends = [i for i in (pools[-1:] if pools else []) if not any(f > i for f in flats)] or flats[-1:] or pools[-1:]
    if not ends:
        raise ValueError(f"{owner}: found no spatial feature map feeding the head (no global pooling or flattening of a 4-D map); "
                         f"give {owner}.layer explicitly")
    end = ends[-1]
    tensor = record.calls[end].inputs[0]
    grid = tuple(tensor.shape[-2:])
    attention = [t for at, t in record.attention_inputs if at > end]
    if attention:  # a transformer: the input of the last self-attention, on the token grid of the last embedding
        tensor = attention[-1]
        if tensor.dim() != 3:
            raise ValueError(f"{owner}: the last attention input has shape {tuple(tensor.shape)}, not (N, tokens, dim); "
                             f"give {owner}.layer explicitly")
        token_grid(tensor, grid, owner)  # checked now, before any work
    else:
        while (i := record.writer(tensor)) is not None and record.calls[i].func in _GLOBAL_POOLS and record.calls[i].inputs[0].dim() == 4:
            tensor = record.calls[i].inputs[0]  # VGG: avgpool to 7x7 before flatten; the map is what was pooled
    i = record.writer(tensor)
    if i is None:
        raise ValueError(f"{owner}: the head reads the model input itself; there is no feature map to explain with")
    call = record.calls[i]
    name = record.module_name(tensor, after=i)
    if name is None:  # written by a functional call after any module returned it: name it after its source module
        name = f"{_source(record, call)} -> {_name(call.func)}"
    return Target(call.func, call.k, name or "<model>", bool(attention), grid if attention else None)


def _source(record: Trace, call: Call, depth: int = 8) -> str:
    """The nearest module output upstream of a functional call (following its first inputs back)."""
    for t in call.inputs:
        if (name := record.module_name(t)) is not None:
            return name
    for t in call.inputs:
        i = record.writer(t)
        if depth and i is not None:
            return _source(record, record.calls[i], depth - 1)
    return "<input>"


def token_grid(tokens: torch.Tensor, grid: tuple[int, int] | None, owner: str) -> tuple[int, int, bool]:
    """(h, w, has class token) for (N, L, D) tokens: L = h*w + 1 (class token first) or h*w."""
    length = tokens.shape[1]
    if grid is None:
        side = round((length - 1) ** 0.5)
        grid = (side, side) if side * side == length - 1 else (round(length ** 0.5),) * 2
    h, w = grid
    if length == h * w + 1:
        return h, w, True
    if length == h * w:
        return h, w, False
    raise ValueError(f"{owner}: cannot lay {length} tokens out on a {h}x{w} patch grid (with or without a class token)")


def as_map(tokens: torch.Tensor, grid: tuple[int, int] | None, owner: str) -> torch.Tensor:
    """(N, L, D) tokens -> (N, D, h, w) on the patch grid, the class token dropped."""
    h, w, cls = token_grid(tokens, grid, owner)
    patches = tokens[:, 1:] if cls else tokens
    return patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)


class Tap(TorchFunctionMode):
    """Replace the result of the ``target.k``-th call of ``target.func`` by a fresh leaf (``leaf``), continuing from a copy."""

    def __init__(self, target: Target, requires_grad: bool) -> None:
        super().__init__()
        self.target, self.requires_grad, self.count, self.leaf = target, requires_grad, 0, None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is self.target.func:
            if self.count == self.target.k and torch.is_tensor(out):
                self.leaf = out.detach().requires_grad_(self.requires_grad)
                out = self.leaf * 1  # a non-leaf copy, so later in-place ops are allowed
            self.count += 1
        return out


@contextlib.contextmanager
def tapped(target: Target, requires_grad: bool) -> Iterator[Tap]:
    tap = Tap(target, requires_grad)
    with tap:
        yield tap
