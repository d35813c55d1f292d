"""Input invariance (Kindermans, Hooker, Adebayo, Alber, Schuett, Daehne, Erhan & Kim, "The
(un)reliability of saliency methods", in Explainable AI, Springer LNCS 11700, 2019).

Definition: shift every input by a constant m (``shift`` per channel, in normalised
units) and compensate in the first layer's bias, b' = b - W m, so that the shifted model
f'(x + m) = f(x) computes exactly the same function of the same evidence. An
input-invariant method explains f' at x + m as it explains f at x. Per sample the
relative change
  d = || Phi(f', x + m) - Phi(f, x) ||_2 / || Phi(f, x) ||_2
(0: invariant). Kindermans et al.: the gradient and gradient-based methods that ignore
the input's offset are invariant; gradient x input, IG with a zero baseline and
deep Taylor with a zero root point are not.

Which layer: the first module (in registration order) that owns parameters must be an
``nn.Linear`` (on the flattened input) or an ``nn.Conv2d``, and it must read the input
directly; otherwise the metric refuses in one line. A padded convolution pads 0, not the
shifted value, so its border outputs see less of the shift than the interior: the bias
absorbs the interior's W m and a forward hook on the (copied) layer adds the border's
constant remainder, so f' is still exactly f of the unshifted input. It then verifies f'(x + m) = f(x) on the batch (relative error
below 1e-4) and refuses if not, so a model whose first layer does not read the raw input
never gets a number. The model passed in is not changed (a deep copy is shifted).

``scores``: d per sample; lower is better; headline: mean. Extra ``invariant``: 1 where
d <= ``tolerance``. NaN where Phi(f, x) = 0 (counted in ``MetricResult.dropped``).

Quantus 0.6's InputInvariance gives the same verdicts on an unpadded first convolution. On a
padded one its compensation is wrong: it subtracts the smallest response of the layer to
the shift (a border value) from every output, so its shifted model is another function and
its verdict is not about the explainer; and it never shifts the first input value of an image
(its ``perturb_batch`` passes ``indices[i][1:]``), so its x + m is not a constant shift
(tests/metrics/test_quantus_reference.py).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from methods.types import explain_samples
from methods.validation import check_positive
from metrics._common import check_maps, untouched
from metrics.result import MetricResult, undefined


def unpadded(conv: nn.Conv2d) -> bool:
    """Whether a convolution reads no padding (``padding`` 0 or ``"valid"``)."""
    return conv.padding == "valid" if isinstance(conv.padding, str) else all(p == 0 for p in conv.padding)


class InputInvariance:
    """Input invariance: the relative change of the map under a constant input shift absorbed by the first layer's bias.

    Lower is better (0: invariant); headline: mean. ``needs`` is empty; the explainer comes from the context.

    Args:
        shift (float, optional): The constant added to every input value, in normalised units (non-zero).
            Default: 1.0.
        tolerance (float, optional): The extra ``invariant`` is 1 where the relative change is at most this,
            > 0. Default: 1e-05.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, shift: float = 1.0, tolerance: float = 1e-5) -> None:
        if isinstance(shift, bool) or not isinstance(shift, (int, float)) or shift == 0 or not math.isfinite(shift):
            raise ValueError(f"input_invariance.shift must be a finite non-zero number; got {shift!r}")
        self.shift = float(shift)
        self.tolerance = check_positive("input_invariance", "tolerance", tolerance)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): the check of f' and one re-explanation."""
        return 3

    def shifted_model(self, model: nn.Module, inputs: torch.Tensor) -> nn.Module:
        """A deep copy whose first layer's bias absorbs the shift (refuses in one line where that is not exact)."""
        work = copy.deepcopy(model)
        first = next((m for m in work.modules() if any(True for _ in m.parameters(recurse=False))), None)
        if isinstance(first, nn.Linear):
            shift_in = torch.full((1, first.in_features), self.shift, device=inputs.device, dtype=first.weight.dtype)
            delta = F.linear(shift_in, first.weight).view(-1)
        elif isinstance(first, nn.Conv2d):
            k = first.kernel_size
            shift_in = torch.full((1, first.in_channels, *k), self.shift, device=inputs.device, dtype=first.weight.dtype)
            delta = F.conv2d(shift_in, first.weight, groups=first.groups).view(-1)
            if not unpadded(first):   # the border sees the zero padding: add back the part of W m it misses
                full = torch.full((1, *inputs.shape[1:]), self.shift, device=inputs.device, dtype=first.weight.dtype)
                seen = first._conv_forward(full, first.weight, None)
                border = (delta.view(1, -1, 1, 1) - seen).detach()
                first.register_forward_hook(lambda m, args, out: out + border)
        else:
            raise ValueError(f"input_invariance needs a first parameterised layer that is nn.Linear or nn.Conv2d; got {type(first).__name__}")
        with torch.no_grad():
            if first.bias is None:
                first.bias = nn.Parameter(torch.zeros(first.weight.shape[0], device=inputs.device, dtype=first.weight.dtype))
            first.bias.sub_(delta.to(first.bias.dtype))
        return work

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        explainer = context.get("explainer")
        if explainer is None:
            raise ValueError("input_invariance needs the explainer in the context (explainer=...) to explain the shifted model")
        base = check_maps("input_invariance", inputs, attributions).double()
        x = inputs.detach()
        work = self.shifted_model(model, x)
        with untouched(model), untouched(work), torch.no_grad():
            clean, shifted = model(x).double(), work(x + self.shift).double()
        err = float((shifted - clean).abs().max() / clean.abs().max().clamp_min(1e-12))
        if err > 1e-4:
            raise ValueError(f"input_invariance: the bias-shifted model does not reproduce the model (relative error {err:.1e}); "
                             "its first parameterised layer does not read the input directly")
        maps = check_maps("input_invariance", inputs, explain_samples(explainer, work, x + self.shift, targets, context.get("indices"))).double()
        norm = base.flatten(1).norm(dim=1)
        d = (maps - base).flatten(1).norm(dim=1) / norm.clamp_min(1e-300)
        defined = torch.isfinite(d) & (norm > 0)
        d = torch.where(defined, d, torch.full_like(d, math.nan))
        dropped = undefined("input_invariance", {"all-zero or non-finite map": ~defined}, len(d))
        invariant = torch.where(defined, (d <= self.tolerance).double(), d)
        return MetricResult(scores=d.float().cpu(), higher_is_better=False, extras={"invariant": invariant.float().cpu()}, dropped=dropped)
