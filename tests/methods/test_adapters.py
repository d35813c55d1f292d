"""The adapters to Captum, pytorch-grad-cam and zennit: analytic cases, our own implementations, seeding,
and the one-line message when a library is missing."""
from __future__ import annotations

import sys
import warnings

import pytest
import torch
import torch.nn.functional as F

from harness.models import SmallCNN
from harness.models.small_vit import small_vit
from methods._surrogate import segments
from methods.cam import GradCAM
from methods.captum_adapter import Captum, DeepLift, DeepLiftShap, FeatureAblation, GradientShap, GuidedGradCam, ShapleyValueSampling
from methods.guided_backprop import GuidedBackprop
from methods.lrp import LRP
from tests.toy_models import LinearModel

warnings.filterwarnings("ignore", category=UserWarning)
pytest.importorskip("captum.attr")


@pytest.fixture(scope="module")
def linear():
    model = LinearModel(size=8, bias=True).eval()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    t = torch.tensor([0, 2])
    return model, x, t, model.linear.weight[t].view(2, 3, 8, 8) * x  # w ⊙ (x - 0)


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return SmallCNN().eval(), torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(5)), torch.tensor([1, 3])


def segment_sums(contribution, seg):
    """Each pixel gets the total contribution of its segment (over channels): feature ablation and Shapley values
    of a linear model with a zero baseline."""
    per_pixel = contribution.sum(1).flatten(1)
    flat = seg.flatten(1)
    totals = torch.zeros(per_pixel.shape[0], int(flat.max()) + 1).scatter_add_(1, flat, per_pixel)
    return totals.gather(1, flat).view_as(seg).unsqueeze(1).expand_as(contribution)


def test_captum_methods_on_a_linear_model_give_the_exact_linear_attributions(linear):
    model, x, t, exact = linear
    torch.testing.assert_close(DeepLift()(model, x, t), exact, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(DeepLiftShap(baseline=0.0, n_baselines=3)(model, x, t), exact, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(GradientShap(baseline=0.0, n_samples=3)(model, x, t), exact, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(Captum("IntegratedGradients", n_steps=4)(model, x, t), exact, rtol=1e-5, atol=1e-6)
    patches, _ = segments(x, "patches", 16, 10.0, 4)
    torch.testing.assert_close(ShapleyValueSampling(n_samples=2)(model, x, t), segment_sums(exact, patches), rtol=1e-4, atol=1e-5)
    superpixels, _ = segments(x, "slic", 16, 10.0, 4)
    torch.testing.assert_close(FeatureAblation()(model, x, t), segment_sums(exact, superpixels), rtol=1e-4, atol=1e-5)


def test_gradient_shap_is_seeded_and_leaves_the_global_generators_alone(linear):
    model, x, t, _ = linear
    import numpy as np
    before = (torch.random.get_rng_state(), np.random.get_state()[1].copy())
    a, b = GradientShap(seed=1)(model, x, t), GradientShap(seed=1)(model, x, t)
    assert torch.equal(a, b)
    assert not torch.equal(a, GradientShap(seed=2)(model, x, t))
    assert torch.equal(before[0], torch.random.get_rng_state()) and (before[1] == np.random.get_state()[1]).all()


def test_guided_gradcam_is_guided_backprop_times_nearest_upsampled_gradcam(cnn):
    model, x, t = cnn
    expected = GuidedBackprop()(model, x, t) * F.interpolate(GradCAM().layer_map(model, x, t), size=x.shape[-2:], mode="nearest")
    torch.testing.assert_close(GuidedGradCam()(model, x, t), expected, rtol=1e-4, atol=1e-7)


def test_captum_arguments_are_checked_in_one_line():
    with pytest.raises(ValueError, match="captum.name must be") as info:
        Captum("NoSuchMethod")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="deeplift.nonsense is not an argument of DeepLift"):
        DeepLift(nonsense=1)


@pytest.mark.parametrize("module, package, build", [
    ("captum.attr", "captum", lambda: Captum()),
    ("pytorch_grad_cam", "grad-cam", lambda: __import__("methods.gradcam_library", fromlist=["x"]).GradCAMLibrary()),
    ("zennit.composites", "zennit", lambda: __import__("methods.zennit_adapter", fromlist=["x"]).Zennit()),
])
def test_a_missing_library_is_one_line_naming_the_install_command(monkeypatch, module, package, build):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError) as info:
        build()
    assert f"pip install {package}" in str(info.value) and "\n" not in str(info.value)


def _normalised(maps):
    low = maps.amin(dim=(2, 3), keepdim=True)
    return (maps - low) / (maps.amax(dim=(2, 3), keepdim=True) - low + 1e-7)


@pytest.mark.slow
def test_pytorch_grad_cam_maps_agree_with_their_closed_forms_on_a_gap_linear_net(cnn):
    """GAP + linear head: G = w_c / hw everywhere, so HiResCAM and XGrad-CAM equal Grad-CAM, and Layer-CAM is
    sum_k ReLU(w_ck) A_k; the library min-max scales, resizes and scales again."""
    library = pytest.importorskip("methods.gradcam_library")
    pytest.importorskip("pytorch_grad_cam")
    model, x, t = cnn

    def as_library(layer_map):
        return _normalised(F.interpolate(_normalised(layer_map.clamp(min=0)), size=x.shape[-2:], mode="bilinear", align_corners=False))

    gradcam = as_library(GradCAM().layer_map(model, x, t))
    for cls in (library.GradCAMLibrary, library.HiResCAM, library.XGradCAM):
        torch.testing.assert_close(cls()(model, x, t), gradcam, rtol=1e-4, atol=1e-4)
    acts = model.features(x)
    layercam = torch.einsum("nk,nkhw->nhw", model.classifier.weight[t].clamp(min=0), acts).unsqueeze(1)
    torch.testing.assert_close(library.LayerCAM()(model, x, t), as_library(layercam), rtol=1e-4, atol=1e-4)
    flat = acts.flatten(2).transpose(1, 2)  # Eigen-CAM: the projection on the first principal direction (up to sign)
    centred = flat - flat.mean(1, keepdim=True)
    direction = torch.linalg.svd(centred, full_matrices=False).Vh[:, 0]
    projection = torch.einsum("npk,nk->np", centred, direction).view(2, 1, *acts.shape[-2:])
    eigen = library.EigenCAM()(model, x, t)
    assert min((eigen - as_library(s * projection)).abs().max() for s in (1, -1)) < 1e-3
    for cls in (library.ScoreCAM, library.AblationCAM, library.FullGrad):
        maps = cls()(model, x, t)
        assert maps.shape == (2, 1, 16, 16) and torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1 + 1e-6


def test_pytorch_grad_cam_on_a_vit_uses_the_token_grid(cnn):
    library = pytest.importorskip("methods.gradcam_library")
    pytest.importorskip("pytorch_grad_cam")
    torch.manual_seed(0)
    vit = small_vit(image_size=16, num_layers=2).eval()
    torch.nn.init.normal_(vit.heads.head.weight)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([0, 1])
    ours = _normalised(F.interpolate(_normalised(GradCAM().layer_map(vit, x, t)), size=16, mode="bilinear", align_corners=False))
    torch.testing.assert_close(library.GradCAMLibrary()(vit, x, t), ours, rtol=1e-4, atol=1e-4)
    assert library.GradCAMLibrary().chosen_layer(vit, x) == "encoder.layers.encoder_layer_1.ln_1"


def test_zennit_adapter_matches_our_lrp_composites(cnn):
    zennit = pytest.importorskip("methods.zennit_adapter")
    pytest.importorskip("zennit")
    model, x, t = cnn
    for theirs, ours in (("EpsilonPlus", "epsilon_plus"), ("EpsilonAlpha2Beta1", "epsilon_alpha2_beta1")):
        relevance = zennit.Zennit(composite=theirs)(model, x, t)
        assert ((relevance - LRP(composite=ours)(model, x, t)).norm() / relevance.norm()) < 1e-4
    gamma_box = zennit.Zennit(composite="EpsilonGammaBox", low=-3.0, high=3.0)(model, x, t)
    assert ((gamma_box - LRP(composite="epsilon_gamma_box")(model, x, t)).norm() / gamma_box.norm()) < 1e-4
    with pytest.raises(ValueError, match="zennit.composite must be"):
        zennit.Zennit(composite="Nope")
    vit = small_vit(image_size=16, num_layers=1).eval()  # zennit's hooks fail on attention: one line, not a crash
    with pytest.raises(ValueError, match="zennit: EpsilonPlus cannot run on this model") as info:
        zennit.Zennit()(vit, torch.randn(1, 3, 16, 16), torch.tensor([0]))
    assert "\n" not in str(info.value)


def test_score_cam_and_ablation_cam_follow_their_definitions_on_a_one_conv_gap_linear_net():
    """Score-CAM: w = softmax_k f_c(x ⊙ norm(up(A_k))) (the library's align_corners=True upsampling); Ablation-CAM:
    w_k = (f_c(x) - f_c(x | A_k = 0)) / f_c(x), which for a GAP + linear head is w_ck mean(A_k) / f_c(x)."""
    library = pytest.importorskip("methods.gradcam_library")
    pytest.importorskip("pytorch_grad_cam")
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 3)).eval()
    x, t = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(6)), torch.tensor([0, 2])
    acts = net[1](net[0](x)).detach()
    logit = net(x).gather(1, t.view(-1, 1)).detach()

    def as_library(cam):
        return _normalised(F.interpolate(_normalised(cam.clamp(min=0)), size=8, mode="bilinear", align_corners=False))

    up = F.interpolate(acts, size=8, mode="bilinear", align_corners=True)
    low, high = up.amin(dim=(2, 3), keepdim=True), up.amax(dim=(2, 3), keepdim=True)
    masks = (up - low) / (high - low + 1e-8)
    with torch.no_grad():
        scores = torch.stack([net(x * masks[:, k:k + 1]).gather(1, t.view(-1, 1)).squeeze(1) for k in range(4)], 1)
    score_cam = (scores.softmax(1)[:, :, None, None] * acts).sum(1, keepdim=True)
    torch.testing.assert_close(library.ScoreCAM()(net, x, t), as_library(score_cam), rtol=1e-4, atol=1e-4)
    weights = net[4].weight[t] * acts.mean(dim=(2, 3)) / logit
    ablation_cam = (weights.detach()[:, :, None, None] * acts).sum(1, keepdim=True)
    torch.testing.assert_close(library.AblationCAM()(net, x, t), as_library(ablation_cam), rtol=1e-4, atol=1e-4)


def test_fullgrad_follows_its_definition_on_a_tiny_cnn_with_batchnorm_and_refuses_token_biases():
    """FullGrad (the library's post-processing): psi(|x g_x|) summed over input channels plus psi(|b g_z|) summed over
    the channels of every Conv2d/BatchNorm2d output z (BatchNorm bias b - mu gamma / sigma), psi = per-channel min-max
    scaling then bilinear resizing, the total min-max scaled."""
    library = pytest.importorskip("methods.gradcam_library")
    pytest.importorskip("pytorch_grad_cam")
    torch.manual_seed(2)
    conv1, bn, conv2, head = (torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 4, 3, padding=1),
                              torch.nn.Linear(4, 3))
    with torch.no_grad():
        bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2), bn.weight.normal_(), bn.bias.normal_()
    net = torch.nn.Sequential(conv1, bn, torch.nn.ReLU(), torch.nn.MaxPool2d(2), conv2, torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), head).eval()
    x, t = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3)), torch.tensor([0, 2])
    xg = x.clone().requires_grad_(True)
    z1 = conv1(xg)
    z1bn = bn(z1)
    z2 = conv2(F.max_pool2d(F.relu(z1bn), 2))
    logits = head(F.relu(z2).mean(dim=(2, 3)))
    gx, g1, gbn, g2 = torch.autograd.grad(logits.gather(1, t.view(-1, 1)).sum(), [xg, z1, z1bn, z2])
    bn_bias = bn.bias - bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps)

    def psi(term):  # per-channel min-max, then bilinear resizing to the input (OpenCV's = align_corners=False)
        return F.interpolate(_normalised(term.detach().abs()), size=8, mode="bilinear", align_corners=False).sum(1, keepdim=True)

    total = psi(x * gx) + sum(psi(b.view(1, -1, 1, 1) * g) for b, g in ((conv1.bias, g1), (bn_bias, gbn), (conv2.bias, g2)))
    torch.testing.assert_close(library.FullGrad()(net, x, t), _normalised(total), rtol=1e-4, atol=1e-4)
    vit = small_vit(image_size=16, num_layers=1).eval()  # its nn.Linear/LayerNorm biases act per token: refused in one line
    with pytest.raises(ValueError, match="adds a bias per position, which pytorch-grad-cam's FullGrad ignores") as info:
        library.FullGrad()(vit, torch.randn(1, 3, 16, 16), torch.tensor([0]))
    assert "\n" not in str(info.value)


def test_batched_fullgrad_equals_the_librarys_own_class(cnn):
    """Our FullGrad computes the library's per-layer terms batched in torch (channels summed before resizing); the
    library's own FullGrad class (its OpenCV loop over every image and channel) gives the same map."""
    library = pytest.importorskip("methods.gradcam_library")
    grad_cam = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    model, x, t = cnn
    ours = library.FullGrad()(model, x, t)
    cam = grad_cam.FullGrad(model=model, target_layers=[])
    try:
        theirs = cam(input_tensor=x.clone().requires_grad_(True), targets=[ClassifierOutputTarget(int(c)) for c in t])
    finally:
        cam.activations_and_grads.release()
    for p in model.parameters():
        p.grad = None
    torch.testing.assert_close(ours, torch.as_tensor(theirs).unsqueeze(1), rtol=1e-5, atol=1e-5)
    assert library._batched_fullgrad(grad_cam.FullGrad) is library._batched_fullgrad(grad_cam.FullGrad)  # built once
