"""Layer-wise Relevance Propagation (Bach et al., PLoS ONE 2015; Montavon et al. 2019).

The target logit's value is the relevance at the output, R = f_c(x) e_c, and each
layer redistributes the relevance of its outputs to its inputs by a rule
(``methods.lrp.rules``), chosen per layer by a composite (``methods.lrp.composites``);
the result is R at the input pixels, shape (N, C, H, W). Conservative rules give
sum_i R_i = f_c(x) minus what biases and stabilisers absorb, so this explainer has
no baseline: ``baseline(inputs)`` returns None and the conservation metric should
compare sum R with f_c(x) itself.

Mechanics: relevance travels backwards as the "gradient". A forward hook replaces
each conv/dense/average-pool output by an autograd function with the same value
whose backward applies the layer's rule (input x, relevance R -> R_in);
activations and BatchNorm pass relevance through unchanged (BatchNorm folded into
the conv/dense layer before it when ``canonize`` is on); max-pooling keeps its
gradient (winner takes all); residual adds written in ``forward`` are split in
proportion to their summands (``methods.lrp.canonizers``); functional average pooling
gets the Norm rule and products with a sigmoid-type gate (squeeze-excitation) hold the
gate constant; ``nn.LayerNorm`` (and subclasses such as ConvNeXt's ``LayerNorm2d``) gets AttnLRP's rule
(Achtibat et al., ICML 2024; LXT's ``layer_norm``): its standard deviation is held constant (the identity rule on the
normalisation 1/std), which makes it linear in the input, and the epsilon rule (``epsilon``, whatever the composite)
redistributes through the rest; products with a constant or a parameter (layer scale) pass relevance unchanged; an add
of a parameter (a ViT's position embedding) is a bias (R_x = x R / stab(x + p)). Plain batch-first
``nn.MultiheadAttention`` self-attention gets one of two rule sets (``attention``):

- ``cp``: its attention weights A are held constant, so out_proj(A v(x)) is linear in x and the epsilon rule
  redistributes through the value path only (CP-LRP, Ali et al., ICML 2022): no relevance reaches the queries and keys,
  and for a bias-free model Sum R = f(x).
- ``attnlrp``: AttnLRP's rules (``methods.lrp.attnlrp``): the epsilon rule on the projections, the uniform rule on the
  bilinear products q k^T and A v (half of the relevance to each factor), and softmax linearised at its input,
  R_in_i = z_i (R_i - s_i sum_j R_j). Relevance reaches queries and keys; softmax's bias terms absorb part of it, so on
  a bias-free model Sum R = f(x) - what they absorb (``relevance_and_attention`` reports both).

Any other operation on the
relevance path outside these modules (products of two signals, masked or cross attention, ...) makes the call refuse in one line
naming it (``methods.lrp.guard``), so no map is returned from a model LRP cannot explain.
Nothing in the model is modified and all hooks are removed when the call ends, also
on errors.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from methods._attention import self_attention, values_through
from methods._autograd import check_batch
from methods._hooks import rewritten_outputs
from methods.layer_types import ACTIVATION, AVERAGE_POOLING, BATCH_NORM, CONVOLUTION, LINEAR
from methods.lrp.attnlrp import Slot, attention_rules
from methods.lrp.canonizers import ResidualSplit, merged_batchnorm
from methods.lrp.composites import COMPOSITES, make_composite
from methods.lrp.guard import Identity, RelevanceGuard
from methods.lrp.rules import Epsilon, Norm
from methods.model_state import frozen
from methods.validation import check_choice, check_int

__all__ = ["ATTENTION_RULES", "COMPOSITES", "LRP"]

ATTENTION_RULES = ("cp", "attnlrp")

PASS_THROUGH = (*ACTIVATION, *BATCH_NORM)  # relevance passes through unchanged (BatchNorm: when not folded)

class _Layer:
    """A conv/dense/pooling layer as the rules see it: (folded) parameters and a functional form."""

    def __init__(self, module: nn.Module) -> None:
        self.module, self.bn = module, None

    @property
    def params(self):
        module = self.module
        weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
        if self.bn is not None:
            weight, bias = merged_batchnorm(weight, bias, self.bn)
        return weight, bias

    @property
    def weight(self):
        return self.params[0]

    @property
    def bias(self):
        return self.params[1]

    def __call__(self, x, weight, bias):
        if isinstance(self.module, LINEAR):
            return F.linear(x, weight, bias)
        if isinstance(self.module, CONVOLUTION):
            return self.module._conv_forward(x, weight, bias)
        return self.module(x)


class _Dense:
    """F.linear with given parameters (the projections inside self-attention) as the epsilon rule sees it."""

    def __init__(self, weight, bias) -> None:
        self.weight, self.bias = weight, bias

    def __call__(self, x, weight, bias):
        return F.linear(x, weight, bias)


class _Functional:
    """A functional average pooling as the Norm rule sees it: no parameters, ``func(x, *args, **kwargs)``."""

    weight = bias = None

    def __init__(self, func, args, kwargs) -> None:
        self.func, self.args, self.kwargs = func, args, kwargs

    def __call__(self, x, weight, bias):
        return self.func(x, *self.args, **self.kwargs)


class _DetachedStd(TorchFunctionMode):
    """``F.layer_norm`` with its standard deviation held constant (AttnLRP's LayerNorm rule, Achtibat et al. 2024):
    y = gamma (x - mean x) / sd.detach() + beta is linear in x, so a rule can redistribute through it."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.layer_norm:
            return func(*args, **kwargs)
        bound = {"weight": None, "bias": None, "eps": 1e-5, **dict(zip(("input", "normalized_shape", "weight", "bias", "eps"), args)), **kwargs}
        x, shape, weight, bias, eps = (bound[k] for k in ("input", "normalized_shape", "weight", "bias", "eps"))
        dims = tuple(range(-len(shape), 0))
        centred = x - x.mean(dim=dims, keepdim=True)
        y = centred / torch.sqrt(centred.detach().square().mean(dim=dims, keepdim=True) + eps)
        if weight is not None:
            y = y * weight
        return y + bias if bias is not None else y


class _LayerNorm:
    """A LayerNorm (or a subclass such as ConvNeXt's ``LayerNorm2d``) with its std held constant: the module's own
    forward under :class:`_DetachedStd`. Its parameters are not modified by the rules (the epsilon rule)."""

    weight = bias = None

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, x, weight, bias):
        with _DetachedStd():
            return self.module(x)


class _ValuePath:
    """A self-attention call with its attention weights held constant (AttnLRP's value path; CP-LRP, Ali et al. 2022):
    out_proj(A @ v(x)), linear in x, so the epsilon rule redistributes through it and none goes to the softmax."""

    weight = bias = None

    def __init__(self, module: nn.MultiheadAttention, attention: torch.Tensor) -> None:
        self.module, self.attention = module, attention.detach()

    def __call__(self, x, weight, bias):
        return values_through(self.module, self.attention, x)


class _Relevance(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, layer, rule):
        ctx.save_for_backward(x)
        ctx.layer, ctx.rule = layer, rule
        return y.clone()

    @staticmethod
    def backward(ctx, relevance):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            return ctx.rule.relevance(ctx.layer, x, relevance), None, None, None


class LRP:
    """Layer-wise Relevance Propagation: the target logit redistributed layer by layer down to the pixels.

    Each conv/dense layer gets the rule that ``composite`` assigns it (the table is in
    :mod:`methods.lrp.composites`, the rules in :mod:`methods.lrp.rules`, named as in zennit). Shape
    (N, C, H, W); the map sums to f_c(x) minus what biases and stabilisers absorb, so ``baseline(inputs)``
    returns None.

    Args:
        composite (str, optional): Which rule each layer gets: ``epsilon`` (``epsilon=0``: LRP-0), ``zplus``,
            ``alpha_beta``, ``epsilon_plus``, ``epsilon_plus_flat``, ``epsilon_alpha2_beta1``,
            ``epsilon_alpha2_beta1_flat``, ``epsilon_gamma_box`` or ``epsilon_zbox``.
            Default: ``epsilon_plus``.
        epsilon (float, optional): The epsilon rule's stabiliser, >= 0: every layer of ``epsilon`` and of
            ``epsilon_zbox`` (but the first), the dense layers of the other ``epsilon_*`` composites, and LayerNorm
            and self-attention (AttnLRP's rules) in every composite.
            Default: 1e-6.
        gamma (float, optional): The gamma rule's extra weight on positive parameters, >= 0 (the conv layers
            of ``epsilon_gamma_box``). Default: 0.25.
        alpha (float, optional): Weight of the positive part in the ``alpha_beta`` composite (the
            ``epsilon_alpha2_beta1*`` composites fix 2 and 1). alpha - beta must be 1, whatever the
            composite. Default: 2.0.
        beta (float, optional): Weight of the negative part in the ``alpha_beta`` composite, >= 0.
            Default: 1.0.
        low (float or list of float, optional): Lower bound of the input domain of the z^B (box) rule on the
            first layer (``epsilon_gamma_box``, ``epsilon_zbox``), in the model's input space: a number or
            one value per channel. Default: -3.0.
        high (float or list of float, optional): Upper bound of that domain, above ``low`` everywhere.
            Default: 3.0.
        stabilizer (float, optional): Added to the denominators of the other rules (z+, alpha-beta, gamma,
            z^B, flat), of average pooling and of the residual-add split, >= 0. Default: 1e-6.
        attention (str, optional): The rules for ``nn.MultiheadAttention`` self-attention: ``cp`` (attention weights
            held constant, relevance through the values only; conservative) or ``attnlrp`` (AttnLRP: softmax and the
            q k^T and A v products get their own rules, relevance reaches queries and keys). Default: ``cp``.
        canonize (bool, optional): Fold each eval-mode BatchNorm that directly follows a conv/dense layer into
            it (needed for VGG-BN and ResNet); other BatchNorms pass relevance unchanged. Default: True.
        batch_size (int or None, optional): Images per forward and backward pass, an integer >= 1; None: the
            whole batch at once. Default: None.
    """

    def __init__(
        self,
        composite: str = "epsilon_plus",
        epsilon: float = 1e-6,
        gamma: float = 0.25,
        alpha: float = 2.0,
        beta: float = 1.0,
        low=-3.0,
        high=3.0,
        stabilizer: float = 1e-6,
        attention: str = "cp",
        canonize: bool = True,
        batch_size: int | None = None,
    ) -> None:
        if composite not in COMPOSITES:
            raise ValueError(f"lrp.composite must be one of {', '.join(COMPOSITES)}; got {composite!r}")
        for key, value in (("epsilon", epsilon), ("gamma", gamma), ("stabilizer", stabilizer)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"lrp.{key} must be a number >= 0; got {value!r}")
        if not (isinstance(alpha, (int, float)) and isinstance(beta, (int, float)) and beta >= 0 and abs(alpha - beta - 1) < 1e-9):
            raise ValueError(f"lrp.alpha and lrp.beta must satisfy alpha - beta = 1, beta >= 0; got alpha={alpha!r}, beta={beta!r}")
        check_int("lrp", "batch_size", batch_size, allow_none=True)
        low = torch.as_tensor(low, dtype=torch.float32)
        high = torch.as_tensor(high, dtype=torch.float32)
        if low.dim() == 1:  # per-channel bounds from YAML lists
            low, high = low.view(-1, 1, 1), high.view(-1, 1, 1) if high.dim() == 1 else high
        if high.dim() == 1:
            high = high.view(-1, 1, 1)
        if not bool((low < high).all()):
            raise ValueError(f"lrp.low must be below lrp.high (the input domain of the z^B rule); got low={low.tolist()}, high={high.tolist()}")
        self.composite_name, self.canonize, self.batch_size, self.stabilizer = composite, bool(canonize), batch_size, stabilizer
        self.composite = make_composite(composite, epsilon, gamma, alpha, beta, low, high, stabilizer)
        self.layer_norm_rule = Epsilon(epsilon)
        self.epsilon = epsilon
        self.attention = check_choice("lrp", "attention", attention, ATTENTION_RULES)

    def baseline(self, inputs: torch.Tensor) -> None:
        """None: LRP relevance is compared with f_c(x) itself, not with a difference to a reference input."""
        return None

    def _linear(self, x, weight, bias):
        return _Relevance.apply(x, F.linear(x, weight, bias), _Dense(weight, bias), self.layer_norm_rule)

    def _explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, slots: list[Slot] | None = None,
                 unit: bool = False) -> torch.Tensor:
        x = inputs.detach().clone().requires_grad_(True)
        produced: dict[int, tuple[torch.Tensor, _Layer]] = {}  # tensors a rule layer returned (kept alive)

        def rewrite(module, args, output):
            source = args[0]
            if isinstance(module, PASS_THROUGH):
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and self.canonize and id(source) in produced:
                    produced[id(source)][1].bn = module
                return Identity.apply(source, output)
            if isinstance(module, nn.LayerNorm):  # AttnLRP: std held constant, then the epsilon rule
                out = _Relevance.apply(source, output, _LayerNorm(module), self.layer_norm_rule)
                return out
            layer = _Layer(module)
            rule = Norm(self.stabilizer) if isinstance(module, AVERAGE_POOLING) else self.composite.rule(module, source is x)
            out = _Relevance.apply(source, output, layer, rule)
            produced[id(out)] = (out, layer)
            return out

        def average(func, args, kwargs, out):
            return _Relevance.apply(args[0], out, _Functional(func, args[1:], kwargs), Norm(self.stabilizer))

        def attend(name, module, args, kwargs, output):
            attention, out = self_attention(name, module, args, kwargs, output, "lrp")
            query = args[0] if args else kwargs["query"]
            if self.attention == "attnlrp":
                slot = Slot() if slots is not None else None
                if slot is not None:
                    slots.append(slot)
                return (attention_rules(module, query, self._linear, self.epsilon, slot), *output[1:])
            return (_Relevance.apply(query, out, _ValuePath(module, attention), self.layer_norm_rule), *output[1:])

        modules = [m for m in model.modules() if isinstance(m, (*LINEAR, *CONVOLUTION, *AVERAGE_POOLING, *PASS_THROUGH, nn.LayerNorm))]
        blocks = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)]
        handles = [m.register_forward_hook(lambda m, a, k, o, name=name: attend(name, m, a, k, o), with_kwargs=True) for name, m in blocks]
        guard = RelevanceGuard(model, modules + [m for _, m in blocks], average, self.stabilizer)
        try:
            with torch.enable_grad(), rewritten_outputs(modules, rewrite), guard, ResidualSplit(self.stabilizer):
                logits = model(x)
        finally:
            for h in handles:
                h.remove()
        onehot = torch.zeros_like(logits).scatter_(1, targets.view(-1, 1), 1.0)
        (relevance,) = torch.autograd.grad(logits, x, onehot if unit else onehot * logits.detach())
        return relevance

    def relevance_and_attention(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, unit: bool = False):
        """(the map (N, C, H, W), the relevance R^(A) of every self-attention call's attention map (N, H, L, L), in
        forward order, and the relevance (N,) each call's softmax bias terms absorbed); ``attention=attnlrp`` only.
        ``unit``: start from R = e_c (Chefer et al. 2021) instead of f_c(x) e_c; every rule is linear in R, so this
        divides everything by f_c(x)."""
        if self.attention != "attnlrp":
            raise ValueError("lrp: the relevance of the attention maps needs attention=attnlrp (cp holds them constant)")
        targets = check_batch(inputs, targets)
        size = self.batch_size or inputs.shape[0]
        maps, chunks = [], []
        with frozen(model):
            for x, t in zip(inputs.split(size), targets.split(size)):
                slots: list[Slot] = []
                maps.append(self._explain(model, x, t, slots, unit))
                chunks.append(slots)
        if not chunks[0]:
            raise ValueError("lrp: the model has no nn.MultiheadAttention self-attention, so no attention map has a relevance")
        attention = [torch.cat([c[i].relevance for c in chunks]) for i in range(len(chunks[0]))]
        absorbed = [torch.cat([c[i].absorbed for c in chunks]) for i in range(len(chunks[0]))]
        return torch.cat(maps), attention, absorbed

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one forward pass and one relevance backward pass."""
        return 1

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        size = self.batch_size or inputs.shape[0]
        with frozen(model):
            return torch.cat([self._explain(model, x, t) for x, t in zip(inputs.split(size), targets.split(size))])
