"""Any composite of zennit (Anders et al. 2021, ``zennit.composites``) as an explainer.

``Zennit(composite="EpsilonPlus")`` registers ``zennit.composites.EpsilonPlus(canonizers=...)``
on the model for the call and returns the modified gradient of the target logit, seeded with
the logit itself (R = f_c(x) e_c at the output), shape (N, C, H, W): zennit's LRP-style
relevance. ``canonizer``: ``sequential`` (``SequentialMergeBatchNorm``: BatchNorm after a
conv/dense layer), ``resnet`` (``ResNetCanonizer``), ``vgg`` (``VGGCanonizer``) or none.
Other keyword arguments go to the composite (``epsilon``, ``low``, ``high``, ``gamma``, ...).
zennit's rules apply to the module types it knows; unlike :class:`methods.LRP`, which
refuses models with operations it has no rule for, zennit passes other operations by their
plain gradient, as the library does; where zennit's hooks fail (ViT attention, DenseNet) the
call refuses in one line. The model is left as found (zennit removes its hooks
and canonizers on exit; :func:`methods.model_state.frozen` restores modes and flags).
zennit is optional: without it, building the explainer fails in one line naming
``pip install zennit``.
"""
from __future__ import annotations

import inspect
import traceback
from pathlib import Path

import torch
from torch import nn

from methods._autograd import check_batch
from methods._optional import require
from methods.model_state import frozen
from methods.validation import check_choice

CANONIZERS = ("sequential", "resnet", "vgg", None)


def _raised_by_libraries(error: BaseException) -> bool:
    """Whether the innermost frame of the error is zennit's or torch's code (not the model's own forward)."""
    frames = traceback.extract_tb(error.__traceback__)
    roots = [str(Path(m.__file__).parent) for m in (torch, require("zennit", "zennit", "zennit"))]
    return bool(frames) and any(frames[-1].filename.startswith(root) for root in roots)


class Zennit:
    """A zennit composite's relevance (module docstring).

    Args:
        composite (str, optional): A class of ``zennit.composites`` (``EpsilonPlus``, ``EpsilonPlusFlat``,
            ``EpsilonAlpha2Beta1``, ``EpsilonAlpha2Beta1Flat``, ``EpsilonGammaBox``, ``GuidedBackprop``,
            ``ExcitationBackprop``, ...). Default: ``EpsilonPlus``.
        canonizer (str or None, optional): ``sequential``, ``resnet``, ``vgg`` or None (no canonizer).
            Default: ``sequential``.
        **kwargs: Keyword arguments of the composite (``epsilon``, ``low``, ``high``, ``gamma``, ...).
    """

    def __init__(self, composite: str = "EpsilonPlus", canonizer: str | None = "sequential", **kwargs) -> None:
        composites = require("zennit.composites", "zennit", "zennit")
        cls = getattr(composites, composite, None) if isinstance(composite, str) else None
        if not (inspect.isclass(cls) and issubclass(cls, composites.Composite)) or cls in (composites.Composite,):
            names = sorted(n for n, c in vars(composites).items() if inspect.isclass(c) and issubclass(c, composites.Composite)
                           and c.__module__ == composites.__name__ and "Map" not in n and n not in ("Composite", "MixedComposite"))
            raise ValueError(f"zennit.composite must be a composite of zennit.composites ({', '.join(names)}); got {composite!r}")
        self.canonizer = check_choice("zennit", "canonizer", canonizer, CANONIZERS)
        takes = set(inspect.signature(cls.__init__).parameters) - {"self", "canonizers"}
        if set(kwargs) - takes:
            raise ValueError(f"zennit.{sorted(set(kwargs) - takes)[0]} is not an argument of {composite}; allowed: {', '.join(sorted(takes))}")
        self.composite_name, self.cls, self.kwargs = composite, cls, kwargs

    def _canonizers(self):
        if self.canonizer is None:
            return []
        if self.canonizer == "sequential":
            return [require("zennit.canonizers", "zennit", "zennit").SequentialMergeBatchNorm()]
        vision = require("zennit.torchvision", "zennit", "zennit")
        return [vision.ResNetCanonizer() if self.canonizer == "resnet" else vision.VGGCanonizer()]

    def baseline(self, inputs: torch.Tensor) -> None:
        """None: the relevance is compared with f_c(x) itself, as :class:`methods.LRP`'s."""
        return None

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one forward and one modified backward pass."""
        return 1

    def _refusal(self, error: RuntimeError) -> ValueError:
        first = (str(error).splitlines() or [""])[0]
        return ValueError(f"zennit: {self.composite_name} cannot run on this model (zennit raised: {first}); use method=lrp "
                          "or a gradient method")

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        composite = self.cls(canonizers=self._canonizers(), **self.kwargs)
        with frozen(model), torch.enable_grad():
            # a canonizer that fails halfway (SequentialMergeBatchNorm on DenseNet) may have merged layers, added biases
            owned = {m: dict(m._parameters) for m in model.modules()}
            values = {p: p.data for p in model.parameters()}
            try:
                composite.register(model)
            except RuntimeError as error:
                composite.remove()
                for m, parameters in owned.items():
                    m._parameters.clear()
                    m._parameters.update(parameters)
                for p, data in values.items():
                    p.data = data
                raise self._refusal(error) from None
            try:
                x = inputs.detach().clone().requires_grad_(True)
                out = model(x)
                onehot = torch.zeros_like(out).scatter_(1, targets.view(-1, 1), 1.0)
                (relevance,) = torch.autograd.grad(out, x, onehot * out.detach())
            except RuntimeError as error:  # zennit's hooks on modules it does not support (attention)
                if not _raised_by_libraries(error):
                    raise  # the model's own error
                raise self._refusal(error) from None
            finally:
                composite.remove()
        return relevance
