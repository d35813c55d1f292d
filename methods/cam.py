"""Class activation maps: CAM, Grad-CAM and Grad-CAM++.

With A (N, K, h, w) the activations of a target layer and G = d f_c / d A:
- CAM (Zhou et al., CVPR 2016): M = sum_k w_ck A_k, with w_c the target row of the
  linear classifier that follows global average pooling (``classifier``: a module
  name, or null for the last ``nn.Linear``); defined only for GAP + linear heads.
- Grad-CAM (Selvaraju et al., ICCV 2017): M = ReLU(sum_k alpha_k A_k) with
  alpha_k = mean_ij G_k,ij (Captum's ``LayerGradCam`` with ``relu_attributions``).
- Grad-CAM++ (Chattopadhyay et al., WACV 2018): alpha_k,ij = G^2 / (2 G^2 +
  sum_ab A_k,ab G^3) (0 where the denominator is 0), weights
  w_k = sum_ij alpha_k,ij ReLU(G_k,ij), M = ReLU(sum_k w_k A_k); the exp(S)
  factor of the paper is dropped, as in the authors' code.

``layer`` names the target module (``model.get_submodule``); null detects it: the
last ``nn.Conv2d`` to run, followed through the element-wise modules (BatchNorm,
activations, dropout) that run right after it with the same output shape, so the
map is the rectified feature map that feeds the pooling (e.g. SmallCNN
``features.9``, ResNet ``layer4.1.relu``, VGG ``features.N`` ReLU). A module that runs
several times contributes its last output. ``layer_map`` returns M at layer
resolution (N, 1, h, w); calling the explainer upsamples it to the input size (``upsample``,
bilinear by default, align_corners=False), shape (N, 1, H, W).
"""
from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import nn

from methods._autograd import check_batch
from methods._hooks import recorded_outputs
from methods.layer_types import ELEMENTWISE, LINEAR
from methods.model_state import frozen

_FOUND: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()


def find_target_layer(model: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """The last conv layer's (rectified) output module, from one probe forward pass (remembered per
    model and input shape, so repeated calls on batches cost no extra pass)."""
    known = _FOUND.setdefault(model, {})
    shape = tuple(inputs.shape[1:])
    if shape not in known:
        known[shape] = _probe_target_layer(model, inputs)
    return known[shape]


def _probe_target_layer(model: nn.Module, inputs: torch.Tensor) -> nn.Module:
    leaves = [m for m in model.modules() if not list(m.children())]
    order: list[tuple[nn.Module, torch.Size]] = []

    def log(module, args, output):
        if torch.is_tensor(output):
            order.append((module, output.shape))

    handles = [m.register_forward_hook(log) for m in leaves]
    try:
        with torch.no_grad():
            model(inputs[:1])
    finally:
        for h in handles:
            h.remove()
    convs = [i for i, (m, _) in enumerate(order) if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("cam: the model has no nn.Conv2d layer; give cam.layer explicitly")
    i = convs[-1]
    shape = order[i][1]
    while i + 1 < len(order) and isinstance(order[i + 1][0], ELEMENTWISE) and order[i + 1][1] == shape:
        i += 1
    return order[i][0]


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
            (e.g. ``features.9`` or ``layer4``); None: the last ``nn.Conv2d`` to run, followed through the
            element-wise modules right after it, i.e. the rectified feature map that feeds the pooling.
            Default: None.
        relu (bool, optional): Rectify the map, M -> max(M, 0). Default: True (Grad-CAM and Grad-CAM++
            as their papers; :class:`CAM` overrides it: False).
        upsample (str, optional): Interpolation of the map to the input size: ``bilinear``, ``bicubic``
            (both align_corners=False) or ``nearest``. Default: ``bilinear``.
    """

    name = "cam"
    needs_gradient = True

    def __init__(self, layer: str | None = None, relu: bool = True, upsample: str = "bilinear") -> None:
        if layer is not None and not isinstance(layer, str):
            raise ValueError(f"{self.name}.layer must be a module name or null (auto: last conv layer); got {layer!r}")
        if upsample not in ("bilinear", "nearest", "bicubic"):
            raise ValueError(f"{self.name}.upsample must be one of bilinear, nearest, bicubic; got {upsample!r}")
        self.layer, self.relu, self.upsample = layer, bool(relu), upsample

    def target_layer(self, model: nn.Module, inputs: torch.Tensor) -> nn.Module:
        return find_target_layer(model, inputs) if self.layer is None else _submodule(model, self.layer, "layer")

    def combine(self, model: nn.Module, acts: torch.Tensor, grads: torch.Tensor | None, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def layer_map(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The map at the target layer's resolution, (N, 1, h, w)."""
        targets = check_batch(inputs, targets)
        with frozen(model):
            layer = self.target_layer(model, inputs)
            # The layer's output becomes a leaf: the backward pass runs from the logits to the layer only.
            with recorded_outputs([layer], as_leaves=self.needs_gradient) as outputs, torch.set_grad_enabled(self.needs_gradient):
                logits = model(inputs.detach())
                acts = outputs[layer]
                grads = None
                if self.needs_gradient:
                    (grads,) = torch.autograd.grad(logits.gather(1, targets.view(-1, 1)).sum(), acts)
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

    def combine(self, model, acts, grads, targets):
        if self.classifier is None:
            linears = [m for m in model.modules() if isinstance(m, LINEAR)]
            if not linears:
                raise ValueError("cam needs a linear classifier after global average pooling; the model has no nn.Linear")
            head = linears[-1]
        else:
            head = _submodule(model, self.classifier, "classifier")
        if head.weight.shape[1] != acts.shape[1]:
            raise ValueError(f"cam needs GAP + linear head: classifier takes {head.weight.shape[1]} features, target layer has {acts.shape[1]} channels")
        weights = head.weight[targets].to(acts.dtype)
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
