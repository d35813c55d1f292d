"""What LRP may see on the relevance path outside its rule modules: everything else is refused in one line.

Relevance travels backwards as the gradient, so any operation on the relevance path
that no rule module wraps passes relevance by its plain gradient. That is right for
re-arranging operations (view, reshape, flatten, permute, indexing, concatenation,
splitting, eval-mode dropout), for ReLU written as a function (its gradient is the
mask where the relevance of the output is zero anyway) and for max-pooling (winner
takes all), and for residual adds of two maps on the path (split by
``methods.lrp.canonizers.ResidualSplit``). Functional average pooling
(``F.adaptive_avg_pool2d``, ``F.avg_pool2d``, a spatial ``mean``) gets the ``Norm``
rule as its module twin does. A product of a map with a gate, the output of a sigmoid-type
module (``nn.Sigmoid``, ``nn.Hardsigmoid``: squeeze-excitation's ``scale * x``), treats the
gate as a constant: all relevance goes to the map, none to the gate branch
(the "signal-take-all" rule of Arras et al., 2017, as element-wise activations such as
SiLU = x sigmoid(x) are passed through). A product with a constant or a parameter (ConvNeXt's
layer scale, ``x * 0.5``) is linear in the path tensor alone, so its epsilon rule passes the
relevance unchanged (as AttnLRP, Achtibat et al. 2024); an add of a parameter or constant (a ViT's position
embedding) is a bias: R_x = x R / stab(x + p). Any other operation on the path outside a rule
module (a same-shape product of two signals, GELU or softmax written as a function) has no rule
here, and its gradient would make the map non-conservative (sums of 1e26 were
measured on EfficientNet), so ``RelevanceGuard`` raises a ``ValueError`` naming the
operation and the module it ran in, before any relevance is computed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from methods.lrp.rules import stabilize

T = torch.Tensor
REARRANGING = {
    T.view, T.reshape, T.flatten, torch.flatten, torch.reshape, T.permute, torch.permute, T.transpose, torch.transpose, T.contiguous,
    T.squeeze, torch.squeeze, T.unsqueeze, torch.unsqueeze, T.__getitem__, torch.cat, torch.concat, torch.stack, T.split, torch.split,
    T.chunk, torch.chunk, T.unbind, torch.unbind, T.clone, torch.clone, T.detach, T.to, T.float, F.dropout, F.dropout2d, T.expand,
    F.relu, torch.relu, T.relu, T.relu_, torch.relu_, F.max_pool1d, F.max_pool2d, F.max_pool3d, F.adaptive_max_pool2d,
    T.__setitem__, T.requires_grad_,
}
ADDS = {torch.add, T.add, T.add_, T.__add__, T.__iadd__, T.__radd__}
GATES = (nn.Sigmoid, nn.Hardsigmoid)
PRODUCTS = {torch.mul, T.mul, T.mul_, T.__mul__, T.__imul__, T.__rmul__}
AVERAGES = {F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, T.mean, torch.mean}


def _name(func) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or str(func)


class _Gated(torch.autograd.Function):
    """y = value * gate with the gate as a constant: R_value = R_y, R_gate = 0."""

    @staticmethod
    def forward(ctx, value, gate, out):
        ctx.gate_shape = gate.shape
        return out.clone()

    @staticmethod
    def backward(ctx, relevance):
        return relevance, relevance.new_zeros(ctx.gate_shape), None


class Identity(torch.autograd.Function):
    """The identity rule: forward gives the layer's output, backward passes the relevance to the input unchanged.

    Used for layers whose rule is R_x = R: element-wise activations, and y = c * x with c a constant or a
    parameter (ConvNeXt's layer scale), whose epsilon/LRP-0 rule gives x c R / (c x) = R (AttnLRP's rule for
    such products)."""

    @staticmethod
    def forward(ctx, value, out):
        return out.clone()

    @staticmethod
    def backward(ctx, relevance):
        return relevance, None


class _Biased(torch.autograd.Function):
    """y = x + p with p a parameter or a constant (a ViT's position embedding) acts as a bias: the epsilon rule gives
    R_x = x R / stab(y), p absorbing the rest (zero when p is)."""

    @staticmethod
    def forward(ctx, value, out, stabilizer):
        ctx.save_for_backward(value, out)
        ctx.stabilizer = stabilizer
        return out.clone()

    @staticmethod
    def backward(ctx, relevance):
        value, out = ctx.saved_tensors
        return value * relevance / stabilize(out, ctx.stabilizer), None, None


class RelevanceGuard(TorchFunctionMode):
    """Active during LRP's forward pass; ``average(func, args, kwargs, out)`` wraps functional average pooling."""

    def __init__(self, model: nn.Module, handled, average, stabilizer: float = 1e-6) -> None:
        super().__init__()
        self.stabilizer = stabilizer
        self.names = {m: n for n, m in model.named_modules()}
        self.handled, self.average = set(handled), average
        self.stack: list[nn.Module] = []
        self.depth = 0
        self.handles = []
        self.gates: list[torch.Tensor] = []  # outputs of sigmoid-type modules: the gates of products

    def __enter__(self):
        for m in self.names:
            self.handles.append(m.register_forward_pre_hook(self._enter, prepend=True))
            self.handles.append(m.register_forward_hook(self._leave))
        return super().__enter__()

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles.clear()
        return super().__exit__(*exc)

    def _enter(self, module, args):
        self.stack.append(module)
        self.depth += module in self.handled

    def _leave(self, module, args, output):
        self.stack.pop()
        self.depth -= module in self.handled
        if isinstance(module, GATES) and torch.is_tensor(output):
            self.gates.append(output)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.depth or not torch.is_tensor(out) or not torch.is_grad_enabled():
            return out
        path = [a for a in (*args, *kwargs.values()) if torch.is_tensor(a) and a.requires_grad]
        if not path or func in REARRANGING:
            return out
        if func in ADDS and len(path) == 2 and len(args) == 2:
            return out
        if func in ADDS and len(path) == 1 and len(args) == 2 and out.shape == path[0].shape and all(
                a is path[0] or not torch.is_tensor(a) or isinstance(a, nn.Parameter) or not a.requires_grad for a in args):
            return _Biased.apply(path[0], out, self.stabilizer)  # x + a parameter (a ViT's position embedding): a bias
        if func in PRODUCTS and len(path) == 2 and len(args) == 2:
            gates = [a for a in args if any(a is g for g in self.gates)]
            if len(gates) == 1:
                value = args[1] if gates[0] is args[0] else args[0]
                if value.shape == out.shape:
                    return _Gated.apply(value, gates[0], out)
        if func in PRODUCTS and len(path) == 1 and len(args) == 2 and out.shape == path[0].shape and all(
                a is path[0] or not torch.is_tensor(a) or isinstance(a, nn.Parameter) or not a.requires_grad for a in args):
            return Identity.apply(path[0], out)  # a product with a constant or a parameter (layer scale): linear, R passes
        if func in AVERAGES and len(path) == 1 and args and args[0] is path[0]:
            if func in (T.mean, torch.mean) and not (args[0].dim() == 4 and out.dim() in (2, 4) and out.shape[:2] == args[0].shape[:2]):
                self._refuse(func)
            return self.average(func, args, kwargs, out)
        self._refuse(func)

    def _refuse(self, func):
        where = next((m for m in reversed(self.stack)), None)
        place = "the model's forward" if where is None or not self.names.get(where) else f"{self.names[where]} ({type(where).__name__})"
        raise ValueError(f"lrp: no relevance rule for {_name(func)} in {place}; LRP handles conv/linear/pooling/BatchNorm/element-wise "
                         "activation modules, reshapes, concatenation, residual adds and sigmoid-gated products only (use a gradient method for this model)")
