"""Conservation (completeness) error of an attribution.

References: Sundararajan, Taly & Yan, ICML 2017 (IG completeness); Bach et al., PLoS ONE
2015 and Montavon et al. 2019 (LRP conservation); Shrikumar et al. 2017 (DeepLIFT
summation-to-delta). All state sum_i a_i = f(x) - f(x').

Definition, in logit space of the explained target class c:
  delta_n          = sum_i a_i - (f_c(x) - f_c(x'))          (signed gap, over all input values)
  relative_error_n = |delta| / |f_c(x) - f_c(x')|             (NaN where the denominator is 0)
x' is the explainer's baseline (``explainer.baseline(inputs)``, e.g. Integrated
Gradients; with the samples' ids, ``context["indices"]``, for a ``methods.PerSampleSeeded`` one);
for explainers without one (LRP-style relevance, gradient x input) the
reference output is 0, i.e. the relevance should sum to f_c(x). ``reference``:
``auto`` (baseline when the explainer has one), ``baseline`` or ``zero_output``.

Bias share: for ReLU / max-pool / linear / conv / eval-BatchNorm networks, Euler's
theorem gives sum_i x_i df/dx_i = f(x) - sum_k b_k df/db_k, so gradient x input and
LRP-0 lose exactly B(x) = sum_k b_k df_c/db_k. B(x) is computed per sample with one
forward-mode pass (torch.func.jvp with tangent b on every bias; for eval-mode BatchNorm
the tangent on beta is its effective bias beta - gamma mean / sqrt(var + eps)).
Logged: ``bias_share`` = B(x) - B(x') (B(x') only with a baseline reference) and
``delta_without_bias`` = delta + bias_share; the latter is ~0 when a method's
missing relevance is just what the biases absorb (leaked relevance), and not 0 when
the method itself is wrong.

``scores``: the relative error per sample; lower is better; headline: median (the
ratio is heavy-tailed when f(x) ~ f(x')). Extras per sample: ``delta``,
``within_tolerance`` (1.0 if relative error <= ``tolerance``, default 5 % as advised by
Sundararajan et al.; its mean is the share of samples within tolerance), ``bias_share``,
``delta_without_bias``, ``output`` f_c(x) and ``reference_output`` f_c(x').

Quantus 0.6's Completeness tests the same identity (logits, baseline "black" = the image
minimum) but returns ``sum a == f(x) - f(x')`` as exact float32 equality: on a linear model
the exact map w_c x (relative error < 1e-6 here) is False for 3 of 4 images, and half that map
(50 % off) is False too, so its boolean cannot grade an attribution
(tests/metrics/test_quantus_reference.py).
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from methods.types import HasBaseline, PerSampleSeeded
from methods.validation import check_bool, check_choice, check_int
from metrics._common import check_maps, untouched
from metrics.result import MetricResult, undefined

REFERENCES = ("auto", "baseline", "zero_output")


def bias_share(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """B(x) = sum_k b_k d f_target / d b_k per sample, by one forward-mode JVP (call inside ``untouched``)."""
    from torch.func import functional_call, jvp

    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    biases = {name: p.detach() for name, p in params.items() if name.rsplit(".", 1)[-1] == "bias"}
    directions = dict(biases)
    for mod_name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.training and module.running_mean is not None:
            # eval BatchNorm: y = g (x - mu) / s + beta; its effective bias is beta - g mu / s
            if module.bias is None:
                raise ValueError(f"bias share: BatchNorm {mod_name!r} without affine parameters is not supported")
            scale = (module.weight.detach() if module.weight is not None else 1) / torch.sqrt(module.running_var + module.eps)
            directions[f"{mod_name}.bias" if mod_name else "bias"] = module.bias.detach() - scale * module.running_mean
    if not biases:
        return torch.zeros(inputs.shape[0], device=inputs.device)
    fixed = {k: v.detach() for k, v in {**params, **buffers}.items() if k not in biases}

    def forward(b: dict) -> torch.Tensor:
        return functional_call(model, {**fixed, **b}, (inputs,))

    _, tangent = jvp(forward, (biases,), (directions,))
    return tangent.float().gather(1, targets.view(-1, 1)).squeeze(1)


class Conservation:
    """Conservation (completeness) error: how far the attributions' sum is from the output change explained.

    Per sample |sum a - (f_c(x) - f_c(x'))| / |f_c(x) - f_c(x')|, in logit space of the explained class
    c; lower is better; headline: median (the ratio is heavy-tailed where f(x) ~ f(x')). Extras log
    the signed gap, whether it is within ``tolerance`` and what the biases absorb. ``needs`` is empty;
    a baseline reference takes the explainer from the context.

    Args:
        reference (str, optional): What x' is: ``auto`` (the explainer's baseline if it has one, else
            f(x') = 0), ``baseline`` (the explainer's baseline; an error without one) or
            ``zero_output`` (f(x') = 0: the relevance should sum to f_c(x)). Default: ``auto``.
        tolerance (float, optional): Relative error up to which a sample counts as conserved (the
            extra ``within_tolerance``), >= 0; 5 % as Sundararajan et al. advise. Default: 0.05.
        bias_share (bool, optional): Also log ``bias_share`` = sum_k b_k df_c/db_k (forward-mode AD;
            NaN with a warning where it cannot be computed) and ``delta_without_bias``. Default: True.
        batch_size (int or None, optional): Images per forward pass, >= 1; null: the whole batch.
            Default: None.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, reference: str = "auto", tolerance: float = 0.05, bias_share: bool = True, batch_size: int | None = None) -> None:
        name = "conservation"
        self.reference = check_choice(name, "reference", reference, REFERENCES)
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0:
            raise ValueError(f"{name}.tolerance must be a number >= 0 (relative error); got {tolerance!r}")
        check_bool(name, "bias_share", bias_share)
        check_int(name, "batch_size", batch_size, allow_none=True)
        self.tolerance, self.with_bias, self.batch_size = float(tolerance), bias_share, batch_size

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model in one call (for the sweep's cost estimate): f(x), f(baseline), and one forward-mode pass for the bias share."""
        return 2 + int(self.with_bias)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        maps = check_maps("conservation", inputs, attributions)
        inputs = inputs.detach()
        targets = torch.as_tensor(targets, device=inputs.device).long().reshape(-1)
        explainer = context.get("explainer")
        has_baseline = isinstance(explainer, HasBaseline)
        if self.reference == "baseline" and not has_baseline:
            raise ValueError("conservation.reference=baseline needs an explainer with a .baseline(inputs) method in the context")
        use_baseline = self.reference == "baseline" or (self.reference == "auto" and has_baseline)
        # An explainer whose baseline() is None (LRP-style relevance) conserves f(x) itself: reference 0.
        if not use_baseline:
            base = None
        elif isinstance(explainer, PerSampleSeeded):  # its baseline=uniform noise is drawn per sample id, as in the map
            base = explainer.baseline(inputs, context.get("indices"))
        else:
            base = explainer.baseline(inputs)
        if base is None and self.reference == "baseline":
            raise ValueError(f"conservation.reference=baseline, but {type(explainer).__name__} has no baseline (it returned None); "
                             "use reference=auto or zero_output")
        use_baseline = base is not None
        size = self.batch_size or inputs.shape[0]
        with untouched(model):
            with torch.no_grad():
                f_x = self._logits(model, inputs, targets, size)
                base = base.to(inputs) if use_baseline else None
                f_ref = self._logits(model, base, targets, size) if use_baseline else torch.zeros_like(f_x)
            share = torch.full_like(f_x, math.nan)
            if self.with_bias:
                try:
                    share = torch.cat([bias_share(model, x, t) for x, t in zip(inputs.split(size), targets.split(size))]).double()
                    if use_baseline:
                        share = share - torch.cat([bias_share(model, x, t) for x, t in zip(base.split(size), targets.split(size))]).double()
                except Exception as err:  # a model forward-mode AD cannot differentiate: report NaN, not a crash
                    warnings.warn(f"conservation: bias share not computed ({type(err).__name__}: {err}); logged as NaN")
                    share = torch.full_like(f_x, math.nan)
        total = maps.double().flatten(1).sum(1)
        gap = f_x - f_ref
        delta = total - gap
        rel = torch.where(gap != 0, delta.abs() / gap.abs(), torch.full_like(gap, math.nan))
        within = torch.where(torch.isnan(rel), rel, (rel <= self.tolerance).double())
        extras = {"delta": delta, "within_tolerance": within, "bias_share": share, "delta_without_bias": delta + share,
                  "output": f_x, "reference_output": f_ref}
        dropped = undefined("conservation", {"output equals the reference output (relative error 0/0)": gap == 0,
                                             "non-finite attributions": torch.isnan(rel)}, len(rel))
        return MetricResult(scores=rel.float().cpu(), higher_is_better=False, headline="median",
                            extras={k: v.float().cpu() for k, v in extras.items()}, dropped=dropped)

    @staticmethod
    def _logits(model, inputs, targets, size) -> torch.Tensor:
        out = torch.cat([model(x).double() for x in inputs.split(size)])
        return out.gather(1, targets.view(-1, 1)).squeeze(1)
