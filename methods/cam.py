"""Class activation maps: CAM, Grad-CAM and Grad-CAM++.

With A (N, K, h, w) the activations of a target layer and G = d f_c / d A:
- CAM (Zhou et al., CVPR 2016): M = sum_k w_ck A_k, with w_c the target row of the
  linear classifier that follows global average pooling (``classifier``: a module
  name, or null for the last ``nn.Linear``); defined only for GAP + linear heads, and
  checked: unless the logits equal linear(GAP(A)) on the batch (relative error < 1e-4),
  CAM refuses in one line and names ``gradcam`` (ConvNeXt's LayerNorm head, ViTs,
  MobileNetV3's two-layer head are refused).
- Grad-CAM (Selvaraju et al., ICCV 2017): M = ReLU(sum_k alpha_k A_k) with
  alpha_k = mean_ij G_k,ij (Captum's ``LayerGradCam`` with ``relu_attributions``).
- Grad-CAM++ (Chattopadhyay et al., WACV 2018): alpha_k,ij = G^2 / (2 G^2 +
  sum_ab A_k,ab G^3) (0 where the denominator is 0), weights
  w_k = sum_ij alpha_k,ij ReLU(G_k,ij), M = ReLU(sum_k w_k A_k); the exp(S)
  factor of the paper is dropped, as in the authors' code.

``layer`` names the target module (``model.get_submodule``); null detects it with
one traced probe forward pass (:mod:`methods._trace`): the last spatial feature map
that feeds the head, i.e. the input of the last global pooling (adaptive pooling to
1x1, a mean over the spatial dims) or, without one, of the last flattening of a 4-D
map, followed back through adaptive pooling to a fixed size (VGG's 7x7). That map is
taken after whatever ran on it before the head, modules or functional calls alike
(DenseNet's ``F.relu`` after ``features``; ResNet ``layer4``; ConvNeXt ``features``;
MobileNetV3 after the last Hardswish). For a transformer (a ``nn.MultiheadAttention``
runs after the last flattening of a map), the layer is the input of the last
self-attention (torchvision ViT: ``encoder.layers.encoder_layer_L.ln_1``, as
pytorch-grad-cam's ViT example), whose tokens are reshaped to the patch grid with the
class token dropped. ``chosen_layer(model, inputs)`` names the layer (the runner logs
it as the run parameter ``method_layer``); a 1x1 layer gives a constant map, so it is
warned about. ``layer_map`` returns M at layer resolution (N, 1, h, w); calling the
explainer upsamples it to the input size (``upsample``, bilinear by default,
align_corners=False), shape (N, 1, H, W).
"""
from __future__ import annotations

import warnings
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from methods._autograd import check_batch
from methods._hooks import recorded_outputs
from methods._trace import Target, as_map, head_input, tapped, trace
from methods.layer_types import LINEAR
from methods.model_state import frozen

_FOUND: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()


def find_target(model: nn.Module, inputs: torch.Tensor, owner: str = "cam") -> Target:
    """The map that feeds the head, from one traced probe forward pass (remembered per model and input shape,
    so repeated calls on batches cost no extra pass)."""
    known = _FOUND.setdefault(model, {})
    shape = tuple(inputs.shape[1:])
    if shape not in known:
        with frozen(model):
            known[shape] = head_input(trace(model, inputs), owner)
    return known[shape]


def find_target_layer(model: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """The detected layer as a module (for libraries that take one, e.g. Captum's ``LayerGradCam``); raises when the
    detected map is written by a functional call rather than returned by a module."""
    name = find_target(model, inputs).name
    if " -> " in name:
        raise ValueError(f"cam: the detected map ({name}) is not a module's output; no module to hand to a layer method")
    return model.get_submodule(name)


def _submodule(model: nn.Module, name: str, what: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        names = ", ".join(n for n, _ in model.named_modules() if n)
        raise ValueError(f"cam.{what} {name!r} is not a module of the model; modules: {names}") from None


class _ActivationMap:
    """Base of the class activation maps: a map at a target layer, rectified and upsampled to the input.

    A subclass defines ``combine``: how the layer's activations A (and, where ``needs_gradient``, the
    gradients d f_c / d A) become the map. This base finds the layer, records A with one forward pass (and a
    backward pass down to the layer only), rectifies and upsamples. Output (N, 1, H, W).

    Args:
        layer (str or None, optional): Name of the target module, as ``model.get_submodule`` takes it
            (e.g. ``features.9`` or ``layer4``; a module giving (N, L, D) tokens is laid out on the patch
            grid); None: detected, the last spatial feature map that feeds the head, after its activation
            and normalisation, or a transformer's last attention input (module docstring). Default: None.
        relu (bool, optional): Rectify the map, M -> max(M, 0). Default: True (Grad-CAM and Grad-CAM++
            as their papers; :class:`CAM` overrides it: False).
        upsample (str, optional): Interpolation of the map to the input size: ``bilinear``, ``bicubic``
            (both align_corners=False) or ``nearest``. Default: ``bilinear``.
    """

    name = "cam"
    needs_gradient = True

    def __init__(self, layer: str | None = None, relu: bool = True, upsample: str = "bilinear") -> None:
        if layer is not None and not isinstance(layer, str):
            raise ValueError(f"{self.name}.layer must be a module name or null (auto: the map feeding the head); got {layer!r}")
        if upsample not in ("bilinear", "nearest", "bicubic"):
            raise ValueError(f"{self.name}.upsample must be one of bilinear, nearest, bicubic; got {upsample!r}")
        self.layer, self.relu, self.upsample = layer, bool(relu), upsample

    def chosen_layer(self, model: nn.Module, inputs: torch.Tensor) -> str:
        """The name of the target layer for inputs of this shape (``layer``, or the detected one)."""
        return self.layer if self.layer is not None else find_target(model, inputs, self.name).name

    def combine(self, model: nn.Module, acts: torch.Tensor, grads: torch.Tensor | None, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def check_head(self, model: nn.Module, acts: torch.Tensor, logits: torch.Tensor, layer: str) -> None:
        """Called with the layer's map and the logits before ``combine``; CAM checks its head here."""

    def layer_map(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The map at the target layer's resolution, (N, 1, h, w)."""
        targets = check_batch(inputs, targets)
        grad = self.needs_gradient
        with frozen(model):
            if self.layer is None:
                target = find_target(model, inputs, self.name)
                name = target.name
                # The map becomes a leaf: the backward pass runs from the logits to the layer only.
                # Gradients on even for CAM: the forward pass then takes the code path the probe traced.
                with tapped(target, True) as tap, torch.enable_grad():
                    logits = model(inputs.detach())
                acts, grid = tap.leaf, target.grid
                if acts is None:
                    raise RuntimeError(f"{self.name}: the forward pass did not reach the detected layer {name}; give {self.name}.layer explicitly")
            else:
                name, grid = self.layer, None
                module = _submodule(model, self.layer, "layer")
                with recorded_outputs([module], as_leaves=grad) as outputs, torch.set_grad_enabled(grad):
                    logits = model(inputs.detach())
                acts = outputs[module]
            grads = torch.autograd.grad(logits.gather(1, targets.view(-1, 1)).sum(), acts)[0] if grad else None
            if acts.dim() == 3:  # transformer tokens (N, L, D) -> (N, D, h, w), class token dropped
                acts = as_map(acts, grid, self.name)
                grads = None if grads is None else as_map(grads, grid, self.name)
            if acts.dim() != 4:
                raise ValueError(f"{self.name}: the target layer {name} gives shape {tuple(acts.shape)}, not a (N, K, h, w) map or (N, L, D) tokens")
            if acts.shape[-2:] == (1, 1):
                warnings.warn(f"{self.name}: the target layer {name} is 1x1 for {tuple(inputs.shape[-2:])} inputs, so the map is constant; "
                              f"use larger images or an earlier {self.name}.layer", stacklevel=2)
            self.check_head(model, acts.detach(), logits.detach(), name)
            maps = self.combine(model, acts.detach(), grads, targets)
        return maps.clamp(min=0) if self.relu else maps

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one forward pass and a backward pass to the target layer."""
        return 1

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        maps = self.layer_map(model, inputs, targets)
        kwargs = {} if self.upsample == "nearest" else {"align_corners": False}
        return F.interpolate(maps, size=inputs.shape[-2:], mode=self.upsample, **kwargs)


class CAM(_ActivationMap):
    """Class Activation Mapping: the feature map weighted by the linear head's row of the target class.

    M = sum_k w_ck A_k (Zhou et al. 2016), defined only for a model that ends in global average pooling and
    one linear layer; no gradient is taken. ``layer`` and ``upsample``: see the base,
    :class:`methods.cam._ActivationMap`.

    Args:
        classifier (str or None, optional): Name of the linear head (``model.get_submodule``); it must take
            as many features as the target layer has channels. None: the model's last ``nn.Linear``.
            Default: None.
        relu (bool, optional): Rectify the map; the paper does not. Default: False.
    """

    name = "cam"
    needs_gradient = False

    def __init__(self, layer: str | None = None, classifier: str | None = None, relu: bool = False, upsample: str = "bilinear") -> None:
        super().__init__(layer, relu, upsample)
        if classifier is not None and not isinstance(classifier, str):
            raise ValueError(f"cam.classifier must be a module name or null (auto: last nn.Linear); got {classifier!r}")
        self.classifier = classifier

    def _head(self, model: nn.Module) -> nn.Module:
        if self.classifier is not None:
            return _submodule(model, self.classifier, "classifier")
        linears = [m for m in model.modules() if isinstance(m, LINEAR)]
        if not linears:
            raise ValueError("cam needs a linear classifier after global average pooling; the model has no nn.Linear (use method=gradcam)")
        return linears[-1]

    def check_head(self, model, acts, logits, layer):
        head = self._head(model)
        if not isinstance(head, LINEAR) or head.weight.shape[1] != acts.shape[1]:
            raise ValueError(f"cam needs a global-average-pool + linear head on {layer}: the classifier takes "
                             f"{head.weight.shape[1] if isinstance(head, LINEAR) else '?'} features, the layer has {acts.shape[1]} channels; "
                             "use method=gradcam")
        expected = F.linear(acts.mean(dim=(2, 3)), head.weight, head.bias)
        error = ((expected - logits).norm() / logits.norm().clamp(min=1e-12)).item()
        if not error < 1e-4:
            raise ValueError(f"cam needs a global-average-pool + linear head on {layer}, but the logits differ from linear(GAP(map)) "
                             f"by {error:.2g} (relative); CAM is undefined for this model, use method=gradcam")

    def combine(self, model, acts, grads, targets):
        weights = self._head(model).weight[targets].to(acts.dtype)
        return torch.einsum("nk,nkhw->nhw", weights, acts).unsqueeze(1)


class GradCAM(_ActivationMap):
    """Grad-CAM: the feature map weighted by its spatially averaged gradients, then rectified.

    M = ReLU(sum_k alpha_k A_k) with alpha_k = mean_ij d f_c / d A_k,ij (Selvaraju et al. 2017), as Captum's
    ``LayerGradCam`` with ``relu_attributions``. Arguments ``layer``, ``relu`` and ``upsample``: see the
    base, :class:`methods.cam._ActivationMap`.
    """

    name = "gradcam"

    def combine(self, model, acts, grads, targets):
        alpha = grads.mean(dim=(2, 3), keepdim=True)
        return (alpha * acts).sum(dim=1, keepdim=True)


class GradCAMpp(_ActivationMap):
    """Grad-CAM++: the feature map weighted by pixel-wise weighted positive gradients, then rectified.

    The weights of Chattopadhyay et al. (2018) without the exp(S) factor, as in the authors' code (module
    docstring). Arguments ``layer``, ``relu`` and ``upsample``: see the base,
    :class:`methods.cam._ActivationMap`.
    """

    name = "gradcam_pp"

    def combine(self, model, acts, grads, targets):
        g2 = grads.square()
        denom = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * g2 * grads
        alpha = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(denom))
        weights = (alpha * grads.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
        return (weights * acts).sum(dim=1, keepdim=True)


class TokenGradCAM(GradCAM):
    """Grad-CAM on a ViT's token grid: :class:`GradCAM` restricted to transformers, the attention baseline of
    Chefer et al. (CVPR 2021).

    The map is Grad-CAM of the tokens entering the last self-attention (``encoder_layer_L.ln_1`` in a torchvision
    ViT; ``layer`` overrides), laid out on the patch grid with the class token dropped, upsampled to the input:
    identical to ``gradcam`` on a ViT. A model without ``nn.MultiheadAttention`` self-attention is refused in one
    line (a CNN's Grad-CAM is ``gradcam``). Arguments ``layer``, ``relu`` and ``upsample``: see the base,
    :class:`methods.cam._ActivationMap`.
    """

    name = "token_gradcam"

    def layer_map(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if not any(isinstance(m, nn.MultiheadAttention) for m in model.modules()):
            raise ValueError("token_gradcam needs a transformer with nn.MultiheadAttention self-attention (torchvision ViT, "
                             "small_vit); the model has none (use gradcam)")
        return super().layer_map(model, inputs, targets)
