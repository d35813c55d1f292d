"""Our explainers against Captum's implementations (relative error < 1e-4).

Captum is a test-only dependency. Models: the harness's SmallCNN, and torchvision
ResNet18 / VGG11-BN at 32x32 with random weights (``weights=None``).
"""
from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch
import torchvision

captum_attr = pytest.importorskip("captum.attr")

from harness.models import SmallCNN  # noqa: E402
from methods._surrogate import to_pixels  # noqa: E402
from methods.cam import GradCAM  # noqa: E402
from methods.gradient import Gradient, GradientXInput, Sensitivity  # noqa: E402
from methods.guided_backprop import Deconvnet, GuidedBackprop  # noqa: E402
from methods.integrated_gradients import IntegratedGradients  # noqa: E402
from methods.kernel_shap import KernelSHAP  # noqa: E402
from methods.occlusion import Occlusion  # noqa: E402
from methods.saliency import Saliency  # noqa: E402
from methods.smoothgrad import SmoothGrad  # noqa: E402
from tests.toy_models import LinearModel  # noqa: E402

warnings.filterwarnings("ignore", category=UserWarning, module="captum")


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours - ref).norm() / ref.norm()).item()


def small_cnn():
    torch.manual_seed(0)
    return SmallCNN().eval()


def resnet18():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=4).eval()


def vgg11_bn():
    torch.manual_seed(0)
    return torchvision.models.vgg11_bn(weights=None, num_classes=4).eval()


MODELS = {"small_cnn": small_cnn, "resnet18": resnet18, "vgg11_bn": vgg11_bn}


@pytest.fixture(scope="module", params=list(MODELS))
def setup(request):
    model = MODELS[request.param]()
    gen = torch.Generator().manual_seed(2)
    return request.param, model, torch.randn(2, 3, 32, 32, generator=gen), torch.tensor([1, 3])


def test_gradient_family(setup):
    _, model, x, t = setup
    saliency = captum_attr.Saliency(model)
    signed = saliency.attribute(x, target=t, abs=False)
    assert rel_err(Gradient()(model, x, t), signed) < 1e-4
    assert rel_err(Saliency(batch_size=1)(model, x, t), saliency.attribute(x, target=t)) < 1e-4
    assert rel_err(Sensitivity()(model, x, t), signed.square()) < 1e-4
    assert rel_err(GradientXInput()(model, x, t), captum_attr.InputXGradient(model).attribute(x, target=t)) < 1e-4


@pytest.mark.parametrize("rule", ["riemann_left", "riemann_right", "riemann_middle", "gausslegendre"])
def test_integrated_gradients(setup, rule):
    name, model, x, t = setup
    if name != "small_cnn" and rule != "gausslegendre":
        return  # the rules are model-independent: one rule per torchvision model keeps the suite fast
    base = torch.full_like(x, 0.3)
    # Chunks of 10 on SmallCNN exercise internal batching; on VGG/ResNet one batch like Captum's, because
    # conv results differ by ~1e-6 with batch composition and a path point near a ReLU/max-pool kink
    # turns that into a visible difference (2.6e-3 measured on VGG11-BN).
    chunk = 10 if name == "small_cnn" else None
    ours = IntegratedGradients(n_steps=16, method=rule, baseline=0.3, internal_batch_size=chunk)(model, x, t)
    ref = captum_attr.IntegratedGradients(model).attribute(x, baselines=base, target=t, n_steps=16, method=rule)
    assert rel_err(ours, ref) < 1e-4


def test_integrated_gradients_trapezoid_is_captum_rescaled():
    """Captum's riemann_trapezoid uses step 1/n instead of 1/(n-1) (its weights sum to (n-1)/n);
    ours is the textbook rule, so it equals Captum's times n / (n - 1)."""
    model = small_cnn()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    ours = IntegratedGradients(n_steps=10, method="riemann_trapezoid")(model, x, t)
    ref = captum_attr.IntegratedGradients(model).attribute(x, target=t, n_steps=10, method="riemann_trapezoid")
    assert rel_err(ours, ref * 10 / 9) < 1e-4


def test_guided_backprop_and_deconvnet(setup):
    _, model, x, t = setup
    assert rel_err(GuidedBackprop()(model, x, t), captum_attr.GuidedBackprop(model).attribute(x, target=t)) < 1e-4
    assert rel_err(Deconvnet()(model, x, t), captum_attr.Deconvolution(model).attribute(x, target=t)) < 1e-4


def test_gradcam_before_upsampling(setup):
    name, model, x, t = setup
    layer = {"small_cnn": "features.9", "resnet18": "layer4", "vgg11_bn": "features.27"}[name]
    x = torch.nn.functional.interpolate(x, size=64)  # 2x2 maps at the last ResNet/VGG stage
    ours = GradCAM(layer=layer).layer_map(model, x, t)
    ref = captum_attr.LayerGradCam(model, model.get_submodule(layer)).attribute(x, target=t, relu_attributions=True)
    assert rel_err(ours, ref) < 1e-4
    auto = GradCAM()  # the detected layer is the map feeding the head: small_cnn features, resnet layer4, vgg features (last max-pool)
    detected = auto.chosen_layer(model, x)
    assert detected == {"small_cnn": "features", "resnet18": "layer4", "vgg11_bn": "features"}[name]
    ref = captum_attr.LayerGradCam(model, model.get_submodule(detected)).attribute(x, target=t, relu_attributions=True)
    assert rel_err(auto.layer_map(model, x, t), ref) < 1e-4


@pytest.mark.parametrize("patch,stride", [(6, 4), (8, 8)])
def test_occlusion(setup, patch, stride):
    _, model, x, t = setup
    ours = Occlusion(patch_size=patch, stride=stride, baseline=0.1, batch_size=7)(model, x, t)
    ref = captum_attr.Occlusion(model).attribute(x, sliding_window_shapes=(3, patch, patch), strides=(3, stride, stride),
                                                 baselines=0.1, target=t)
    assert torch.equal(ref, ref[:, :1].expand_as(ref))
    assert rel_err(ours, ref[:, :1]) < 1e-4


@pytest.mark.parametrize("variant,captum_name", [("mean", "smoothgrad"), ("squared", "smoothgrad_sq"), ("vargrad", "vargrad")])
def test_smoothgrad_variants_match_noise_tunnel_on_the_same_noise(variant, captum_name):
    """Same noise: a linear model's gradient does not depend on the input, so the variants reduce to
    known values; with noise_level 0 SmoothGrad is its wrapped explainer, exactly as NoiseTunnel with stdevs 0."""
    model = small_cnn()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    ours = SmoothGrad(explainer=Saliency(), variant=variant, n_samples=3, noise_level=0.0)(model, x, t)
    ref = captum_attr.NoiseTunnel(captum_attr.Saliency(model)).attribute(x, target=t, nt_type=captum_name, nt_samples=3, stdevs=0.0)
    assert rel_err(ours, ref) < 1e-4 if variant != "vargrad" else ours.abs().max() < 1e-6


def exact_shapley(model, x, t, seg, m):
    """Shapley values (N, M) by enumerating all 2^M coalitions (features outside a coalition set to 0)."""
    coalitions = torch.tensor(list(itertools.product([0, 1], repeat=m)), dtype=torch.bool)   # (2^M, M)
    with torch.no_grad():
        v = torch.stack([model(x * c[seg].unsqueeze(1)).gather(1, t.view(-1, 1)).squeeze(1) for c in coalitions], 1)
    size = coalitions.sum(1)
    phi = torch.zeros(x.shape[0], m)
    for j in range(m):
        without = ~coalitions[:, j]
        s = size[without]
        weight = torch.tensor([math.factorial(k) * math.factorial(m - k - 1) / math.factorial(m) for k in s.tolist()])
        index_with = (coalitions[without] | (torch.arange(m) == j)).long() @ (2 ** torch.arange(m - 1, -1, -1))
        phi[:, j] = ((v[:, index_with] - v[:, without]) * weight).sum(1)
    return phi


def test_kernel_shap_matches_captum_and_exact_shapley_values():
    """Additive model: ours and Captum's KernelShap both give the exact values (any full-rank design does).
    SmallCNN with 4 patches: both estimators approach the enumerated Shapley values at the same rate."""
    linear = LinearModel(size=16).eval()
    x, t = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3)), torch.tensor([0, 2])
    ours = KernelSHAP(n_samples=300, segmentation="patches", patch_size=8, seed=0)(linear, x, t)
    seg = KernelSHAP(segmentation="patches", patch_size=8).features(x)[0]
    ref = torch.cat([captum_attr.KernelShap(linear).attribute(x[i:i + 1], baselines=0.0, target=int(t[i]),
                                                               feature_mask=seg[i][None, None], n_samples=300,
                                                               perturbations_per_eval=300) for i in range(2)])
    assert rel_err(ours, ref[:, :1]) < 1e-4

    model, x, t = small_cnn(), torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2)), torch.tensor([1, 3])
    explainer = KernelSHAP(n_samples=2000, segmentation="patches", patch_size=16, seed=0)
    phi, seg, _ = explainer.attributions(model, x, t)
    exact = exact_shapley(model, x, t, seg, 4)
    ref = torch.cat([captum_attr.KernelShap(model).attribute(x[i:i + 1], baselines=0.0, target=int(t[i]),
                                                              feature_mask=seg[i][None, None], n_samples=2000,
                                                              perturbations_per_eval=500) for i in range(2)])
    assert rel_err(phi, exact) < 0.03 and rel_err(ref[:, 0].flatten(1)[:, [0, 16, 512, 528]], exact) < 0.03
    assert rel_err(to_pixels(phi, seg, "feature"), ref[:, :1]) < 0.05


class _FunctionalReLUs(torch.nn.Module):
    """The same layers as ``_ModuleReLUs``, with the ReLUs as calls inside ``forward`` (one of each form)."""

    def __init__(self, convs: torch.nn.ModuleList, head: torch.nn.Linear) -> None:
        super().__init__()
        self.convs, self.head = convs, head

    def forward(self, x):
        x = torch.nn.functional.relu(self.convs[0](x))
        x = torch.relu(self.convs[1](x))
        x = self.convs[2](x).relu_()
        x = torch.nn.functional.relu(self.convs[3](x), inplace=True)
        return self.head(x.mean((2, 3)))


class _ModuleReLUs(torch.nn.Module):
    def __init__(self, convs: torch.nn.ModuleList, head: torch.nn.Linear) -> None:
        super().__init__()
        self.convs, self.head = convs, head
        self.relus = torch.nn.ModuleList([torch.nn.ReLU() for _ in convs])

    def forward(self, x):
        for conv, relu in zip(self.convs, self.relus):
            x = relu(conv(x))
        return self.head(x.mean((2, 3)))


@pytest.mark.parametrize("ours_cls,captum_name", [(GuidedBackprop, "GuidedBackprop"), (Deconvnet, "Deconvolution")])
def test_guided_backprop_and_deconvnet_modify_functional_relus(ours_cls, captum_name):
    """F.relu, torch.relu, Tensor.relu_ and F.relu(inplace=True) are modified like nn.ReLU modules (Captum's
    hooks only see the modules: on the functional model it returns the plain gradient)."""
    torch.manual_seed(0)
    convs = torch.nn.ModuleList([torch.nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1) for i in range(4)])
    head = torch.nn.Linear(8, 4)
    functional, modules = _FunctionalReLUs(convs, head).eval(), _ModuleReLUs(convs, head).eval()
    x, t = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(4)), torch.tensor([0, 2])
    reference = getattr(captum_attr, captum_name)(modules).attribute(x, target=t)
    assert rel_err(ours_cls()(functional, x, t), reference) < 1e-5
    assert rel_err(ours_cls()(modules, x, t), reference) < 1e-5
    assert rel_err(Gradient()(functional, x, t), reference) > 0.1   # the modification matters here
