"""CAM, Grad-CAM and LRP on modern architectures: the right layer, the right map, or a one-line refusal.

Torchvision densenet121, mobilenet_v3_small, efficientnet_b0, convnext_tiny and a small
VisionTransformer (patch 8 on 32 px), random weights, 2 images, and a net with functional and
in-place ReLUs and a residual add written in ``forward``. Each model is built once per module.
"""
from __future__ import annotations

import copy
import warnings
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from harness.models import SmallCNN
from methods.cam import CAM, GradCAM, GradCAMpp
from methods.gradient import GradientXInput
from methods.lrp import LRP

captum_attr = pytest.importorskip("captum.attr")


class FunctionalNet(nn.Module):
    """Bias-free: F.relu, an in-place F.relu, a residual add and torch.relu in ``forward``, functional pooling."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.head = nn.Linear(8, classes, bias=False)

    def trunk(self, x):
        x = F.relu(self.conv1(x))
        y = F.relu(self.conv2(x), inplace=True)
        return torch.relu(self.conv3(y) + x)

    def forward(self, x):
        return self.head(F.adaptive_avg_pool2d(self.trunk(x), 1).flatten(1))


def _random_heads(model: nn.Module) -> nn.Module:
    """torchvision zero-initialises some heads (ViT), which makes every map zero; random, bias-free heads instead."""
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is not None:
                m.bias.zero_()
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / m.weight.shape[1] ** 0.5)
    return model.eval()


BUILDERS = {
    "densenet121": lambda: torchvision.models.densenet121(num_classes=4),
    "mobilenet_v3_small": lambda: torchvision.models.mobilenet_v3_small(num_classes=4),
    "efficientnet_b0": lambda: torchvision.models.efficientnet_b0(num_classes=4),
    "convnext_tiny": lambda: torchvision.models.convnext_tiny(num_classes=4),
    "vit": lambda: torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                                                       mlp_dim=64, num_classes=4),
    "functional": FunctionalNet,
}
SIZE = {"densenet121": 64, "mobilenet_v3_small": 64, "efficientnet_b0": 64, "convnext_tiny": 64, "vit": 32, "functional": 16}
LAYER = {"densenet121": "features -> relu", "mobilenet_v3_small": "features", "efficientnet_b0": "features",
         "convnext_tiny": "features", "vit": "encoder.layers.encoder_layer_1.ln_1", "functional": "conv3 -> relu"}
CAM_OK = {"densenet121", "efficientnet_b0", "functional"}
LRP_OK = {"densenet121", "functional", "mobilenet_v3_small", "efficientnet_b0", "convnext_tiny", "vit"}
# squeeze-excitation gates, LayerNorm's std and the attention weights are constants for LRP: conservation, not = g x i
GATED = {"mobilenet_v3_small", "efficientnet_b0", "convnext_tiny", "vit"}


@pytest.fixture(scope="module", params=list(BUILDERS))
def arch(request):
    torch.manual_seed(0)
    model = _random_heads(BUILDERS[request.param]())
    size = SIZE[request.param]
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    return request.param, model, x, torch.tensor([1, 3 if request.param != "functional" else 2])


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


def reference_gradcam(name, model, x, t):
    """Grad-CAM at the expected layer, computed independently: Captum's LayerGradCam on an equivalent module, or by hand."""
    if name in ("mobilenet_v3_small", "efficientnet_b0", "convnext_tiny"):
        return captum_attr.LayerGradCam(model, model.features).attribute(x, target=t, relu_attributions=True)
    if name == "densenet121":  # the same network with its functional ReLU as a module Captum can hook
        twin = nn.Sequential(OrderedDict(features=model.features, relu=nn.ReLU(), pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(),
                                         classifier=model.classifier)).eval()
        torch.testing.assert_close(twin(x), model(x))
        return captum_attr.LayerGradCam(twin, twin.relu).attribute(x, target=t, relu_attributions=True)
    if name == "functional":  # GAP + linear head: alpha_k = w_ck / hw exactly
        acts = model.trunk(x)
        alpha = model.head.weight[t] / acts[0, 0].numel()
        return torch.einsum("nk,nkhw->nhw", alpha, acts).clamp(min=0).unsqueeze(1)
    # ViT: the last block's ln_1 output, patch tokens on the 4x4 grid, gradients by hand
    store = {}
    layer = model.encoder.layers[-1].ln_1
    handle = layer.register_forward_hook(lambda m, a, o: store.setdefault("a", o))
    try:
        logits = model(x)
        (grad,) = torch.autograd.grad(logits.gather(1, t.view(-1, 1)).sum(), store["a"])
    finally:
        handle.remove()
    acts, grad = (v[:, 1:].transpose(1, 2).reshape(2, -1, 4, 4) for v in (store["a"].detach(), grad))
    return (grad.mean(dim=(2, 3), keepdim=True) * acts).sum(1, keepdim=True).clamp(min=0)


def test_the_detected_layer_is_the_map_that_feeds_the_head(arch):
    name, model, x, t = arch
    assert GradCAM().chosen_layer(model, x) == LAYER[name]
    ours = GradCAM().layer_map(model, x, t)
    ref = reference_gradcam(name, model, x, t)
    assert ours.shape == ref.shape and ours.abs().sum() > 0
    assert rel_err(ours, ref) < 1e-4
    assert GradCAMpp()(model, x, t).shape == (2, 1, *x.shape[-2:])


def test_cam_is_exact_on_gap_linear_heads_and_refuses_elsewhere(arch):
    name, model, x, t = arch
    if name not in CAM_OK:
        with pytest.raises(ValueError, match="gradcam") as info:
            CAM()(model, x, t)
        assert "\n" not in str(info.value) and "cam" in str(info.value)
        return
    cam = CAM().layer_map(model, x, t)
    unrectified = GradCAM(relu=False).layer_map(model, x, t)
    torch.testing.assert_close(cam, unrectified * cam[0, 0].numel(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cam.mean(dim=(1, 2, 3)), model(x).gather(1, t.view(-1, 1)).squeeze(1), rtol=1e-4, atol=1e-5)


def test_lrp0_conserves_and_is_gradient_x_input_on_bias_free_models_or_refuses(arch):
    """Bias-free (random BatchNorm statistics are the identity; biases zeroed): sum R = f_c(x), and R = gradient x input
    where no gate is held constant; ConvNeXt (LayerNorm's std held constant, layer scale passed: AttnLRP's rules) and the ViT
    (attention weights held constant in the value product, the position embedding a bias, zeroed here) conserve too."""
    name, model, x, t = arch
    if name == "vit":  # the position embedding is a bias (it absorbs relevance): zero it for the bias-free check
        model = copy.deepcopy(model)
        nn.init.zeros_(model.encoder.pos_embedding)
    lrp = LRP(composite="epsilon", epsilon=0.0, stabilizer=0.0)
    if name not in LRP_OK:
        with pytest.raises(ValueError, match="no relevance rule") as info:
            lrp(model, x, t)
        assert "\n" not in str(info.value)
        return
    relevance = lrp(model, x, t)
    logit = model(x).gather(1, t.view(-1, 1)).squeeze(1)
    torch.testing.assert_close(relevance.sum(dim=(1, 2, 3)), logit, rtol=1e-3, atol=1e-5)
    assert torch.isfinite(relevance).all() and relevance.abs().sum() > 0
    if name in GATED:  # the gate's own gradient is what gradient x input has and LRP drops
        assert rel_err(relevance, GradientXInput()(model, x, t)) > 1e-3
    else:
        assert rel_err(relevance, GradientXInput()(model, x, t)) < 1e-3


def test_functional_and_module_average_pooling_give_the_same_relevance():
    model = FunctionalNet()
    twin = nn.Sequential(model.conv1, nn.ReLU(), model.conv2, nn.ReLU(), model.conv3, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         model.head).eval()
    x, t = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
    # without the residual add the two are the same function; the twin drops it, so compare on a residual-free copy
    plain = FunctionalNet()
    plain.trunk = lambda x: F.relu(plain.conv3(F.relu(plain.conv2(F.relu(plain.conv1(x))))))
    torch.testing.assert_close(plain(x), twin(x))
    for composite in ("epsilon", "epsilon_plus"):
        assert rel_err(LRP(composite=composite)(plain, x, t), LRP(composite=composite)(twin, x, t)) < 1e-5


def test_a_1x1_target_layer_is_warned_about():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GradCAM()(model, torch.randn(2, 3, 4, 4), torch.tensor([0, 1]))
    assert any("1x1" in str(w.message) and "constant" in str(w.message) for w in caught)


def test_zennit_refuses_in_one_line_where_its_hooks_fail_and_leaves_the_model_as_found(arch):
    name, model, x, t = arch
    if name not in ("densenet121", "vit"):
        return  # the composites' values on supported models are checked against our LRP in test_adapters.py
    zennit = pytest.importorskip("methods.zennit_adapter")
    pytest.importorskip("zennit")
    from tests.toy_models import assert_same_snapshot, model_snapshot
    before = model_snapshot(model)
    with pytest.raises(ValueError, match="zennit: EpsilonPlus cannot run on this model") as info:
        zennit.Zennit()(model, x, t)  # densenet: the canonizer fails halfway, after merging some layers
    assert "\n" not in str(info.value)
    assert_same_snapshot(before, model_snapshot(model))
