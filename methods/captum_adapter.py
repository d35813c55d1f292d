"""Any input-attribution class of Captum (Kokhlikyan et al. 2020, ``captum.attr``) as an explainer.

``Captum(name="DeepLift")`` builds ``captum.attr.DeepLift(model)`` on each call and returns
``attribute(inputs, target=targets, **kwargs)``, shape (N, C, H, W) (Captum's own output).
Keyword arguments other than the ones below are the library's: those the class's
constructor takes go to it (``multiply_by_inputs``, ``eps``), the rest to ``attribute``
(``n_steps``, ``n_samples``, ``stdevs``, ``perturbations_per_eval``, ...), e.g.
``python -m harness method=captum method.name=GradientShap +method.n_samples=20``.

- ``baseline``: the ``baselines`` argument as a :mod:`methods.baselines` spec; for the
  methods that average over a baseline *distribution* (``DeepLiftShap``, ``GradientShap``),
  ``n_baselines`` draws of that spec on each image (seeds ``seed``, ``seed + 1``, ...; ``uniform``
  noise over that image's value range, drawn from (seed, sample id)) form that image's distribution
  (None: one zero baseline).
- ``segmentation``: a feature mask for the perturbation classes that take one
  (``FeatureAblation``, ``ShapleyValueSampling``, ``Lime``, ``KernelShap``,
  ``FeaturePermutation``): square patches or superpixels, as :class:`methods.LIME`'s.
- ``GuidedGradCam`` (a layer method) gets the layer :class:`methods.GradCAM` detects.
- ``FeatureAblation`` and ``ShapleyValueSampling`` pass ``perturbations_per_eval`` = max(1, 128 // N) unless it is
  given: about 128 perturbed images per forward pass instead of N (the library's default of one perturbation per
  pass left the model's batch at the explained batch size; the maps are the same, only batched).

Completeness is checked, so a library map that is silently wrong on this model does not pass: the
attributions of the difference/path classes must sum to the change of the target logit,
sum_i A_i = f_c(x) - f_c(x') (DeepLIFT's summation-to-delta, Shrikumar et al. 2017; IG's completeness,
Sundararajan et al. 2017; for a baseline distribution f_c(x) - mean_b f_c(b), exactly for DeepLIFT-SHAP and in
expectation for GradientSHAP). The gap is ``|sum_i A_i - delta| / (|delta| + 1e-3 (|f_c(x)| + |f_c(x')|))``
(the second term keeps a near-zero delta from inflating it), per image, largest over the batch.

- ``DeepLift``, ``DeepLiftShap`` first refuse, in one line and before any work, a non-linear module (activation,
  LayerNorm/GroupNorm, ``nn.MultiheadAttention``) whose exact type has no rule in Captum's DeepLIFT (SiLU, GELU,
  Hardswish, LayerNorm, attention, ...), and a functional non-linearity in ``forward`` (DenseNet's final
  ``F.relu``; found by tracing one forward pass, :mod:`methods._trace`): Captum would pass its plain gradient. They are exact where Captum has a
  rule for every non-linearity, so a gap above ``EXACT_TOLERANCE`` (1e-2; float32 rounding where Captum's rules
  cover the model, ReLU nets, is below 1e-5) is a one-line ``ValueError``. It catches what the structural check
  cannot see: products of two signals (gating), non-linearities written as tensor methods it does not trace,
  modules reused within one forward pass.
  This holds on models with ``nn.MaxPool`` layers too: Captum's max-pool rule (the delta routed through the argmax
  of the input and of the baseline separately) is not always summation-to-delta exact (a gap of 0.17 on a
  random-weight SmallCNN, 1e-7 on a one-conv net with one max-pool), and a map that misses the delta by more than
  the tolerance is not DeepLIFT's, so it is refused as well (the message says it is the max-pool rule and names
  ``integrated_gradients``); we do not write our own max-pool rule into Captum's hooks.
- ``IntegratedGradients``, ``GradientShap`` approximate (quadrature; sampling): a gap above
  ``APPROXIMATE_TOLERANCE`` (5e-2, the 5 % Sundararajan et al. suggest for choosing the number of steps) is a
  one-line ``warnings.warn`` naming the count to raise (``n_steps``; ``n_samples``), which the run records.

The check costs one forward pass of the inputs and of the baselines; it is skipped where the library's
output is not meant to sum to the delta (``multiply_by_inputs=False``, ``stdevs`` > 0, user-given ``baselines``).

Per-sample seeding (:class:`methods.types.PerSampleSeeded`, ``ids=``; default the positions 0..N-1): the two
distribution classes make every random draw per sample from (seed, sample id) (:mod:`methods.randomness`), so
an image's map does not depend on the batch it is explained in:

- ``DeepLiftShap`` is Captum's estimator with each image's own distribution: Captum's ``DeepLift`` on the
  N * n_baselines (image, baseline) pairs in one call, averaged over the baselines (what ``DeepLiftShap.attribute``
  does with one distribution shared by the batch);
- ``GradientShap`` is Captum's estimator (a ``NoiseTunnel`` over ``InputBaselineXGradient``) with its three
  draws made per sample instead of from NumPy's and torch's global generators for the whole batch: for
  each of ``n_samples`` points, a baseline of the image's distribution (uniform index), a ~ U(0, 1) and,
  when ``stdevs`` > 0, Gaussian noise on the input; then A = mean_k (x + e_k - b_k) * grad f_c(a_k (x + e_k)
  + (1 - a_k) b_k), all N * n_samples points in one gradient call of Captum's (:func:`gradient_shap_estimate`;
  tests/methods/test_captum_seeding.py replays Captum's own draws through it and gets Captum's map).

The call runs under :func:`methods.model_state.frozen` (the model is left as found) and
a forked, seeded RNG (``seed``; null -> 0), so repeated calls agree (the other classes draw from it per call). Captum is optional:
without it, building the explainer fails in one line naming ``pip install captum``.
"""
from __future__ import annotations

import inspect
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from methods._autograd import check_batch
from methods._optional import require, seeded
from methods._surrogate import SEGMENTATIONS, segments
from methods._trace import trace
from methods.baselines import Baseline
from methods.layer_types import ACTIVATION
from methods.model_state import frozen
from methods.randomness import call_ids, normal, random_keys, uniform
from methods.validation import check_choice, check_int, check_seed

DISTRIBUTION = ("DeepLiftShap", "GradientShap")
MASKED = ("FeatureAblation", "ShapleyValueSampling", "Lime", "KernelShap", "FeaturePermutation")
LAYERED = ("GuidedGradCam",)
EXACT = ("DeepLift", "DeepLiftShap")  # attributions sum to f(x) - f(x') exactly: refuse when they do not
APPROXIMATE = {"IntegratedGradients": "n_steps", "GradientShap": "n_samples"}  # up to quadrature / sampling: warn
EXACT_TOLERANCE = 1e-2
BATCHED = ("FeatureAblation", "ShapleyValueSampling")  # perturbations_per_eval filled in: PERTURBED_ROWS images per pass
PERTURBED_ROWS = 128
PICK_STREAM, ALPHA_STREAM, NOISE_STREAM = 111, 112, 113  # methods.randomness streams of GradientShap's draws
OWN_ARGUMENTS = {"GradientShap": {"n_samples", "stdevs", "baselines"}, "DeepLiftShap": {"baselines", "custom_attribution_func"}}
# algorithms that draw nothing: with a fixed baseline, a sample's map does not depend on its batch (methods.types.DependsOnBatch)
DRAW_NOTHING = ("IntegratedGradients", "Saliency", "InputXGradient", "DeepLift", "GuidedBackprop", "Deconvolution",
                "FeatureAblation", "Occlusion", "GuidedGradCam")
NON_LINEAR = (*ACTIVATION, nn.LayerNorm, nn.GroupNorm, nn.MultiheadAttention)  # what DeepLIFT needs a rule for


FUNCTIONAL_NON_LINEAR = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, F.gelu, F.silu, F.hardswish,
                         F.elu, F.leaky_relu, F.relu6, F.hardtanh, F.softplus, torch.sigmoid, torch.Tensor.sigmoid, torch.tanh,
                         torch.Tensor.tanh, F.softmax, torch.softmax, torch.Tensor.softmax, F.layer_norm, F.group_norm}


def check_deeplift_rules(model: nn.Module, inputs: torch.Tensor, owner: str, name: str) -> None:
    """Refuse in one line (before any attribution) a non-linearity Captum's DeepLIFT has no rule for, where it passes
    the plain gradient, which is not DeepLIFT: a module whose exact type is not in its ``SUPPORTED_NON_LINEAR``, or,
    traced in one forward pass, a functional non-linearity (``F.relu`` in ``forward``) no such module returned."""
    from captum.attr._core import deep_lift
    supported = tuple(getattr(deep_lift, "SUPPORTED_NON_LINEAR", {}))
    rules = ", ".join(sorted({t.__name__ for t in supported}))
    advice = f"which is not DeepLIFT (its rules: {rules}); use integrated_gradients or gradient_x_input"
    for module_name, module in model.named_modules():
        if isinstance(module, NON_LINEAR) and type(module) not in supported:
            raise ValueError(f"{owner}: Captum's {name} has no rule for {module_name} ({type(module).__name__}) and would pass its "
                             f"plain gradient, {advice}")
    record = trace(model, inputs)
    hooked = [out for module_name, out, _ in record.module_outputs if type(model.get_submodule(module_name)) in supported]
    for call in record.calls:
        if call.func in FUNCTIONAL_NON_LINEAR and not any(out is call.output for out in hooked):
            source = record.module_name(call.output)
            where = f"on the output of {source}" if source else "in forward"
            raise ValueError(f"{owner}: Captum's {name} cannot hook the functional {getattr(call.func, '__name__', call.func)} "
                             f"{where} (no module) and would pass its plain gradient, {advice}")
APPROXIMATE_TOLERANCE = 5e-2


def completeness_gap(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor,
                     baselines: torch.Tensor, distribution: bool = False) -> float:
    """max over the batch of |sum A - (f_c(x) - f_c(x'))| / (|delta| + 1e-3 (|f_c(x)| + |f_c(x')|)), where f_c(x')
    is the mean over the baselines when they are a ``distribution`` shared by all inputs (M, C, H, W) or one
    distribution per input (N, M, C, H, W), else one baseline per input."""
    with torch.no_grad():
        fx = model(inputs).gather(1, targets.view(-1, 1)).squeeze(1)
        if baselines.dim() == inputs.dim() + 1:  # (N, M, ...): each input's own distribution
            n, m = baselines.shape[:2]
            fb = model(baselines.flatten(0, 1)).gather(1, targets.repeat_interleave(m).view(-1, 1)).view(n, m).mean(1)
        elif distribution:
            fb = model(baselines)[:, targets].mean(0)
        else:
            fb = model(baselines).gather(1, targets.view(-1, 1)).squeeze(1)
    delta = fx - fb
    total = attributions.flatten(1).sum(1).to(delta.dtype)
    return ((total - delta).abs() / (delta.abs() + 1e-3 * (fx.abs() + fb.abs())).clamp(min=1e-12)).max().item()


class Captum:
    """A ``captum.attr`` input-attribution class, built on the model at each call (module docstring).

    Args:
        name (str, optional): The class in ``captum.attr``: any input-attribution class whose constructor takes
            the model (``IntegratedGradients``, ``DeepLift``, ``DeepLiftShap``, ``GradientShap``,
            ``ShapleyValueSampling``, ``FeatureAblation``, ``Saliency``, ``InputXGradient``, ``GuidedBackprop``,
            ``Occlusion``, ``Lime``, ``KernelShap``, ...) or ``GuidedGradCam``. Default: ``IntegratedGradients``.
        baseline (str, float or None, optional): The ``baselines`` argument, a :mod:`methods.baselines` spec
            (``zero``, ``mean``, ``blur``, ``uniform`` or a number); None: not passed (Captum's default).
            Default: None.
        n_baselines (int, optional): Draws of ``baseline`` forming the distribution of ``DeepLiftShap`` and
            ``GradientShap``, >= 1. Default: 8.
        segmentation (str or None, optional): Feature mask of the masked perturbation classes: ``patches``,
            ``slic``, ``quickshift`` or ``felzenszwalb``; None: every input element is a feature. Default: None.
        n_segments (int, optional): Superpixels per image (``slic``, ``felzenszwalb``), >= 1. Default: 16.
        patch_size (int, optional): Side of the square ``patches`` in pixels, >= 1. Default: 4.
        seed (int or None, optional): Seed of the forked RNG the call runs under, and of the baseline draws;
            None: the run's seed (0 when called directly). ``DeepLiftShap`` and ``GradientShap`` draw per sample
            from (seed, sample id) instead (module docstring). Default: None.
        **kwargs: The library's keyword arguments: constructor ones go to the class, the rest to ``attribute``.
    """

    owner = "captum"  # the config name in messages (a catalogue entry's own)

    def __init__(self, name: str = "IntegratedGradients", baseline=None, n_baselines: int = 8, segmentation: str | None = None,
                 n_segments: int = 16, patch_size: int = 4, seed: int | None = None, **kwargs) -> None:
        attr = require("captum.attr", "captum", self.owner)
        cls = getattr(attr, name, None) if isinstance(name, str) else None
        if not inspect.isclass(cls) or not hasattr(cls, "attribute") or name.startswith("Layer") or name.startswith("Neuron"):
            names = sorted(n for n, c in vars(attr).items() if inspect.isclass(c) and hasattr(c, "attribute")
                           and not n.startswith(("Layer", "Neuron", "Internal")) and n[0].isupper())
            raise ValueError(f"{self.owner}.name must be an input-attribution class of captum.attr ({', '.join(names)}); got {name!r}")
        self.name, self.cls = name, cls
        check_seed(self.owner, seed)
        self.n_baselines = check_int(self.owner, "n_baselines", n_baselines)
        if segmentation is not None:
            check_choice(self.owner, "segmentation", segmentation, SEGMENTATIONS)
        self.n_segments, self.patch_size = check_int(self.owner, "n_segments", n_segments), check_int(self.owner, "patch_size", patch_size)
        self.segmentation, self.seed, self.baseline_spec = segmentation, seed, baseline
        self.baseline = None if baseline is None else Baseline(baseline, self.owner, seed)
        takes = set(inspect.signature(cls.__init__).parameters) - {"self", "forward_func", "model", "layer"}
        self.init = {k: v for k, v in kwargs.items() if k in takes}
        self.attribute = {k: v for k, v in kwargs.items() if k not in takes}
        known = set(inspect.signature(cls.attribute).parameters)
        unknown = set(self.attribute) - known - {"kwargs"} if "kwargs" not in known else set()
        if unknown:
            raise ValueError(f"{self.owner}.{sorted(unknown)[0]} is not an argument of {name} or {name}.attribute; "
                             f"allowed: {', '.join(sorted((takes | known) - {'inputs', 'target', 'self'}))}")
        if name in DISTRIBUTION:  # drawn per sample by us (module docstring): only the arguments that estimator has
            self.seeded_per_sample = True  # methods.types.PerSampleSeeded
            other = sorted(set(self.attribute) - OWN_ARGUMENTS[name])
            if other:
                raise ValueError(f"{self.owner}.{other[0]} is not supported: {name} is drawn per sample here and takes "
                                 f"{', '.join(sorted(OWN_ARGUMENTS[name] | takes))}")
            if name == "GradientShap":
                check_int(self.owner, "n_samples", self.attribute.get("n_samples", 5))
                stdevs = self.attribute.get("stdevs", 0.0)
                if isinstance(stdevs, bool) or not isinstance(stdevs, (int, float)) or not stdevs >= 0:
                    raise ValueError(f"{self.owner}.stdevs must be a number >= 0; got {stdevs!r}")

    def _baselines(self, inputs: torch.Tensor, ids: torch.Tensor | None = None):
        """The baselines: None, one per input, or for the distribution classes each input's own (N, M, C, H, W)."""
        if self.name in DISTRIBUTION:
            if "baselines" in self.attribute:  # the user's distribution (M, C, H, W), shared by every input
                shared = torch.as_tensor(self.attribute["baselines"]).to(inputs.device, inputs.dtype)
                return shared.unsqueeze(0).expand(inputs.shape[0], *shared.shape)
            if self.baseline is None:
                return torch.zeros_like(inputs).unsqueeze(1)
            seed, ids = self.seed or 0, call_ids(inputs, ids)
            return torch.stack([Baseline(self.baseline_spec, self.owner, seed + k)(inputs, ids) for k in range(self.n_baselines)], 1)
        if self.baseline is None:
            return None
        return self.baseline(inputs)

    def feature_mask(self, inputs: torch.Tensor) -> torch.Tensor | None:
        """The ``feature_mask`` of the masked perturbation classes (N, 1, H, W): ``segmentation`` made on the inputs
        (superpixels: scikit-image, one image at a time); None for the other classes or without ``segmentation``."""
        if self.segmentation is None or self.name not in MASKED:
            return None
        seg, _ = segments(inputs, self.segmentation, self.n_segments, 10.0, self.patch_size)
        return seg.unsqueeze(1).contiguous()

    def _distribution_size(self) -> int:
        """Baselines in each input's distribution (``DeepLiftShap``, ``GradientShap``)."""
        if "baselines" in self.attribute:
            return len(self.attribute["baselines"])
        return self.n_baselines if self.baseline is not None else 1

    def _method(self, model: nn.Module, inputs: torch.Tensor):
        if self.name in LAYERED:
            from methods.cam import find_target_layer
            return self.cls(model, find_target_layer(model, inputs), **self.init)
        return self.cls(model, **self.init)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate), from Captum's defaults and the arguments."""
        c, h, w = shape
        features = (self.n_segments if self.segmentation not in (None, "patches") else
                    -(-h // self.patch_size) * -(-w // self.patch_size) if self.segmentation else c * h * w)
        n = self.attribute.get
        return {"IntegratedGradients": n("n_steps", 50), "GradientShap": n("n_samples", 5), "DeepLiftShap": self._distribution_size(),
                "ShapleyValueSampling": n("n_samples", 25) * (features + 1), "FeatureAblation": features + 1,
                "FeaturePermutation": features + 1, "Lime": n("n_samples", 50), "KernelShap": n("n_samples", 50),
                "NoiseTunnel": n("nt_samples", 5)}.get(self.name, 1)

    def depends_on_batch(self) -> bool:
        """Whether a map may depend on the batch (:class:`methods.types.DependsOnBatch`): the algorithms that draw from
        the generators seeded per call, or a baseline other than zero or a number (conservative). ``DeepLiftShap`` and
        ``GradientShap`` draw per sample (:class:`methods.PerSampleSeeded`), so theirs do not."""
        if self.name in DISTRIBUTION:
            return False
        fixed = self.baseline_spec is None or self.baseline_spec == "zero" or isinstance(self.baseline_spec, (int, float))
        return not (self.name in DRAW_NOTHING and fixed and "stdevs" not in self.attribute)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """The library's map; ``ids`` (one per input, default 0..N-1) seed ``DeepLiftShap``'s and ``GradientShap``'s draws."""
        targets = check_batch(inputs, targets)
        if self.name in DISTRIBUTION:
            return self._distribution_call(model, inputs, targets, call_ids(inputs, ids))
        kwargs = dict(self.attribute)
        baselines = self._baselines(inputs)
        if baselines is not None:
            kwargs["baselines"] = baselines
        mask = self.feature_mask(inputs)
        if mask is not None:
            kwargs["feature_mask"] = mask
        if self.name in BATCHED and "perturbations_per_eval" not in kwargs:
            kwargs["perturbations_per_eval"] = max(1, PERTURBED_ROWS // inputs.shape[0])
        if self.name in EXACT:
            check_deeplift_rules(model, inputs, self.owner, self.name)
        with frozen(model), seeded(self.seed, inputs.device):
            x = inputs.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                out = self._method(model, x).attribute(x, target=targets, **kwargs)
            if self._checks_completeness():
                self._check_completeness(model, inputs, targets, out.detach(), torch.zeros_like(inputs) if baselines is None else baselines)
        return out.detach()

    def _distribution_call(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """``DeepLiftShap`` / ``GradientShap`` with per-sample distributions and draws (module docstring)."""
        baselines = self._baselines(inputs, ids)
        if self.name in EXACT:
            check_deeplift_rules(model, inputs, self.owner, self.name)
        n, m = baselines.shape[:2]
        with frozen(model):
            if self.name == "DeepLiftShap":
                extra = {k: v for k, v in self.attribute.items() if k != "baselines"}
                pairs = inputs.detach().repeat_interleave(m, 0).requires_grad_(True)  # pair i * m + j: image i, its baseline j
                deeplift = require("captum.attr", "captum", self.owner).DeepLift(model, **self.init)
                with torch.enable_grad():
                    out = deeplift.attribute(pairs, baselines=baselines.flatten(0, 1).detach(), target=targets.repeat_interleave(m), **extra)
                out = out.detach().view(n, m, *inputs.shape[1:]).mean(1)
            else:
                k, stdevs = self.attribute.get("n_samples", 5), float(self.attribute.get("stdevs", 0.0))
                pick = random_keys(self.seed, PICK_STREAM, ids, k) % m
                alpha = uniform(self.seed, ALPHA_STREAM, ids, (k,), inputs.dtype)
                noise = stdevs * normal(self.seed, NOISE_STREAM, ids, (k, *inputs.shape[1:]), inputs.dtype) if stdevs else None
                chosen = baselines[torch.arange(n, device=inputs.device).view(-1, 1), pick]
                out = gradient_shap_estimate(self._method(model, inputs), model, inputs, targets, chosen, alpha, noise)
            if self._checks_completeness():
                self._check_completeness(model, inputs, targets, out, baselines, stacklevel=4)  # the caller of __call__
        return out

    def _checks_completeness(self) -> bool:
        return ((self.name in EXACT or self.name in APPROXIMATE) and self.init.get("multiply_by_inputs", True)
                and not self.attribute.get("stdevs", 0.0) and "baselines" not in self.attribute)

    def _check_completeness(self, model, inputs, targets, attributions, baselines, stacklevel: int = 3) -> None:
        gap = completeness_gap(model, inputs.detach(), targets, attributions, baselines, self.name in DISTRIBUTION)
        if self.name in EXACT and not gap <= EXACT_TOLERANCE:
            pools = any(isinstance(m, nn.modules.pooling._MaxPoolNd) for m in model.modules())
            why = ("Captum's DeepLIFT max-pool rule is not summation-to-delta exact on this model's max-pooling" if pools else
                   "Captum has no DeepLIFT rule for some of its operations (LayerNorm, attention, SiLU/GELU, gating products, functional ReLUs)")
            raise ValueError(f"{self.owner}: Captum's {self.name} attributions do not sum to f(x) - f(baseline) on this model "
                             f"(relative gap {gap:.2g} > {EXACT_TOLERANCE:g}): {why}; use method=integrated_gradients or method=gradient_x_input")
        if self.name in APPROXIMATE and not gap <= APPROXIMATE_TOLERANCE:
            warnings.warn(f"{self.owner}: Captum's {self.name} attributions sum to f(x) - f(baseline) only within {gap:.2g} "
                          f"(> {APPROXIMATE_TOLERANCE:g}); raise {self.owner}.{APPROXIMATE[self.name]}", stacklevel=stacklevel)


def gradient_shap_estimate(method, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, baselines: torch.Tensor,
                           alpha: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Captum's GradientShap estimator at given draws: (N, C, H, W) = mean_k (x + e_k - b_k) * grad f_c(a_k (x + e_k) + (1 - a_k) b_k).

    ``baselines`` (N, K, C, H, W) and ``alpha`` (N, K) are each point's baseline and a, ``noise`` (N, K, C, H, W) or None
    the input noise (Captum's ``stdevs``); ``method`` is the ``captum.attr.GradientShap`` whose gradient call
    (``gradient_func``) and ``multiplies_by_inputs`` are used. The arithmetic is Captum's ``NoiseTunnel`` over
    ``InputBaselineXGradient`` (points ordered image-major, summed and divided by K), all N * K points in one call.
    """
    n, k = alpha.shape
    x = inputs.detach().repeat_interleave(k, 0)
    if noise is not None:
        x = x + noise.flatten(0, 1).to(x.dtype)
    b = baselines.flatten(0, 1).to(x.dtype).detach()
    a = alpha.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)
    scaled = (a * x + (1.0 - a) * b).requires_grad_()
    (grads,) = method.gradient_func(model, (scaled,), targets.repeat_interleave(k))
    out = (x - b) * grads if method.multiplies_by_inputs else grads
    return (out.detach().view(n, k, *inputs.shape[1:]).sum(1) / k)


def _entry(cls_name: str, owner: str, title: str, defaults: dict):
    """A catalogue entry: ``Captum`` with ``name`` and a few other defaults fixed (its YAML lists them)."""

    def __init__(self, name: str = cls_name, **kwargs) -> None:
        Captum.__init__(self, name, **{**defaults, **kwargs})

    shown = ", ".join(f"``{k}`` = ``{v}``" for k, v in defaults.items())
    doc = f"""{title}, through Captum's ``{cls_name}`` (:class:`methods.captum_adapter.Captum` with {shown or 'its defaults'}).

    Args:
        name (str, optional): The Captum class. Default: ``{cls_name}``.
    """
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
              inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=cls_name)]
    params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in defaults.items()]
    params.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    __init__.__signature__ = inspect.Signature(params)
    return type(cls_name, (Captum,), {"__init__": __init__, "__doc__": doc, "__module__": __name__, "owner": owner})


DeepLift = _entry("DeepLift", "deeplift", "DeepLIFT, rescale rule (Shrikumar et al., ICML 2017)", {"baseline": "zero"})
DeepLiftShap = _entry("DeepLiftShap", "deeplift_shap", "DeepLIFT-SHAP (Lundberg & Lee, NeurIPS 2017): DeepLIFT averaged over a baseline distribution",
                      {"baseline": "uniform"})
GradientShap = _entry("GradientShap", "gradient_shap", "GradientSHAP / expected gradients (Lundberg & Lee 2017; Erion et al. 2021)", {"baseline": "uniform"})
ShapleyValueSampling = _entry("ShapleyValueSampling", "shapley_sampling", "Shapley value sampling (Castro et al. 2009) over square patches",
                              {"baseline": "zero", "segmentation": "patches"})
FeatureAblation = _entry("FeatureAblation", "feature_ablation", "Feature ablation over superpixels (SLIC): the score drop when a superpixel is replaced",
                         {"baseline": "zero", "segmentation": "slic"})
GuidedGradCam = _entry("GuidedGradCam", "guided_gradcam", "Guided Grad-CAM (Selvaraju et al. 2017): guided backprop times the upsampled Grad-CAM", {})
