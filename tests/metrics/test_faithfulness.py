"""Conservation error, spurious-background ratio and BG-gap."""
from __future__ import annotations

import math

import pytest
import torch

from harness.datasets import SpuriousShapes
from harness.models import SmallCNN
from methods.integrated_gradients import IntegratedGradients
from metrics.background_gap import BackgroundGap
from metrics.conservation import Conservation, bias_share
from metrics.spurious_background import SpuriousBackground
from tests.toy_models import assert_same_snapshot, model_snapshot, relu_cnn, relu_cnn_bn


def grad_x_input(model, x, t):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x).gather(1, t.view(-1, 1)).sum(), x)
    return (g * x).detach()


def batch(n=6, size=16, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# -- conservation ----------------------------------------------------------------------------------
def test_conservation_exact_for_grad_x_input_without_biases():
    model, x = relu_cnn(bias=False).double(), batch().double()
    t = model(x).argmax(1)
    res = Conservation()(model, x, t, grad_x_input(model, x, t))  # no explainer: reference output 0
    assert res.headline == "median" and res.higher_is_better is False
    assert res.scores.abs().max() < 1e-6
    assert res.extras["delta"].abs().max() < 1e-6
    assert torch.all(res.extras["within_tolerance"] == 1)
    assert torch.all(res.extras["bias_share"] == 0)


@pytest.mark.parametrize("factory", [lambda: relu_cnn(bias=True), relu_cnn_bn, lambda: SmallCNN(width=4).eval()])
def test_conservation_gap_equals_bias_share(factory):
    torch.manual_seed(1)
    model, x = factory().double(), batch().double()
    t = model(x).argmax(1)
    res = Conservation()(model, x, t, grad_x_input(model, x, t))
    share = res.extras["bias_share"].double()
    assert share.abs().min() > 1e-4  # the biases matter ...
    torch.testing.assert_close(res.extras["delta"].double(), -share, atol=1e-5, rtol=1e-4)  # ... and account for the whole gap
    assert res.extras["delta_without_bias"].abs().max() < 1e-5


def test_conservation_with_baseline_and_nan():
    torch.manual_seed(0)
    model, x = SmallCNN(width=4).eval(), batch(n=4)
    t = model(x).argmax(1)
    ig = IntegratedGradients(n_steps=64)
    res = Conservation(tolerance=0.05)(model, x, t, ig(model, x, t), explainer=ig)
    with torch.no_grad():
        gap = model(x).gather(1, t.view(-1, 1)).squeeze(1) - model(torch.zeros_like(x)).gather(1, t.view(-1, 1)).squeeze(1)
    torch.testing.assert_close(res.extras["output"] - res.extras["reference_output"], gap, atol=1e-5, rtol=1e-5)
    assert res.aggregate() < 0.05
    # the same maps judged against a zero output are far off
    assert Conservation(reference="zero_output")(model, x, t, ig(model, x, t), explainer=ig).aggregate() > 0.05
    # identical output and reference: undefined, NaN not inf
    res = Conservation(reference="baseline")(model, x, t, torch.zeros_like(x), explainer=type("E", (), {"baseline": lambda self, i: i})())
    assert torch.isnan(res.scores).all() and torch.isnan(res.extras["within_tolerance"]).all()
    with pytest.raises(ValueError, match="baseline"):
        Conservation(reference="baseline")(model, x, t, x, explainer=object())


def test_bias_share_matches_finite_difference():
    torch.manual_seed(0)
    model, x = relu_cnn_bn().double(), batch(n=3).double()
    t = model(x).argmax(1)
    b = bias_share(model, x, t)
    # scale every bias (and BN running mean) by (1 + eps): the output moves by eps * B(x)
    eps = 1e-6
    moved = relu_cnn_bn().double()
    with torch.no_grad():
        for name, tensor in list(moved.named_parameters()) + list(moved.named_buffers()):
            if name.endswith("bias") or name.endswith("running_mean"):
                tensor.mul_(1 + eps)
        fd = (moved(x) - model(x)).gather(1, t.view(-1, 1)).squeeze(1) / eps
    torch.testing.assert_close(b.double(), fd, atol=1e-4, rtol=1e-4)


def test_conservation_leaves_model_alone():
    model = relu_cnn_bn()
    model.train()
    before = model_snapshot(model)
    x = batch(n=2)
    Conservation()(model, x, torch.tensor([0, 1]), x)
    assert_same_snapshot(before, model_snapshot(model))


# -- spurious-background ratio -----------------------------------------------------------------------
def masks_and_model(n=5, size=16):
    masks = torch.zeros(n, 1, size, size, dtype=torch.bool)
    for i in range(n):
        masks[i, :, 2 + i: 9 + i, 3: 8 + i] = True
    model = relu_cnn(bias=False)
    x = batch(n, size)
    return model, x, model(x).argmax(1), masks


def test_sbr_uniform_is_one_and_inside_mask_is_zero():
    model, x, t, masks = masks_and_model()
    metric = SpuriousBackground(only_correct=False, form="ratio")
    uniform = metric(model, x, t, torch.ones_like(x), masks=masks)
    torch.testing.assert_close(uniform.scores, torch.ones(5))
    torch.testing.assert_close(uniform.extras["log_odds"], torch.zeros(5), atol=1e-6, rtol=0)
    inside = metric(model, x, t, masks.expand_as(x).float() * torch.rand(x.shape), masks=masks)
    assert torch.all(inside.scores == 0) and inside.higher_is_better is False
    outside = metric(model, x, t, (~masks).expand_as(x).float(), masks=masks)
    torch.testing.assert_close(outside.scores, 1 / outside.extras["background_area"])
    rand = metric(model, x.repeat(40, 1, 1, 1), t.repeat(40), torch.rand(200, 3, 16, 16), masks=masks.repeat(40, 1, 1, 1))
    assert abs(rand.aggregate() - 1) < 0.02


def test_sbr_normalised_form_spans_the_same_range_on_every_image():
    model, x, t, masks = masks_and_model()
    metric = SpuriousBackground(only_correct=False)   # form: normalised, the headline
    uniform = metric(model, x, t, torch.ones_like(x), masks=masks)
    torch.testing.assert_close(uniform.scores, torch.zeros(5), atol=1e-6, rtol=0)
    outside = metric(model, x, t, (~masks).expand_as(x).float(), masks=masks)
    torch.testing.assert_close(outside.scores, torch.ones(5))          # 1 on every image, whatever its background area
    assert (outside.extras["ratio"] < 1 / 0.6).all()                   # while the ratio form stays well below its bound of 1 / a
    inside = metric(model, x, t, masks.expand_as(x).float(), masks=masks)
    torch.testing.assert_close(inside.scores, -torch.ones(5))          # -1 on every image too
    half = metric(model, x, t, torch.where(masks, 1.0, 0.5).expand_as(x).clone(), masks=masks)   # foreground preferred 2:1
    a = half.extras["background_area"]
    torch.testing.assert_close(half.scores, (half.extras["bgf"] - a) / a)
    assert outside.dropped == {} and uniform.higher_is_better is False


def test_sbr_signed_absolute_and_nan():
    model, x, t, masks = masks_and_model()
    attr = torch.where(masks.expand_as(x), torch.ones_like(x), -torch.ones_like(x))  # negative background
    assert torch.all(SpuriousBackground("signed", only_correct=False, form="ratio")(model, x, t, attr, masks=masks).scores == 0)
    torch.testing.assert_close(SpuriousBackground("absolute", only_correct=False, form="ratio")(model, x, t, attr, masks=masks).scores, torch.ones(5))
    masks_bad = masks.clone()
    masks_bad[0] = False          # empty mask
    masks_bad[1] = True           # no background
    attr = torch.rand(x.shape)
    attr[2] = -1.0                # no positive mass
    with pytest.warns(UserWarning, match="1 of 5 samples undefined"):
        res = SpuriousBackground(only_correct=False)(model, x, t, attr, masks=masks_bad)
    assert torch.isnan(res.scores[:3]).all() and not torch.isnan(res.scores[3:]).any()
    assert res.dropped == {"empty foreground mask": 1, "no background in the mask": 1, "no positive attribution mass": 1}
    # only correctly classified samples count
    labels = t.clone()
    labels[3] = (t[3] + 1) % 3
    res = SpuriousBackground()(model, x, t, torch.rand(x.shape), masks=masks, labels=labels)
    assert math.isnan(res.scores[3]) and not torch.isnan(res.scores[[0, 1, 2, 4]]).any()
    assert res.extras["correct"].tolist() == [1, 1, 1, 0, 1]
    with pytest.raises(ValueError, match="labels"):
        SpuriousBackground()(model, x, t, attr, masks=masks)
    with pytest.raises(ValueError, match="masks"):
        SpuriousBackground(only_correct=False)(model, x, t, attr, masks=None)
    with pytest.raises(ValueError, match="variant must be one of"):
        SpuriousBackground(variant="positive")


# -- BG-gap -------------------------------------------------------------------------------------------
class ForegroundOnly(torch.nn.Module):
    """Classifies by the mask area inside a fixed window: blind to the background by construction."""

    def forward(self, x):
        return torch.zeros(x.shape[0], 4)


def test_background_gap_matches_accuracies():
    ds = SpuriousShapes(n_test=64)
    torch.manual_seed(0)
    model = SmallCNN(width=4).eval()
    idx = torch.arange(10, 30)
    test = ds.split("test")
    x, labels = test.images[idx], test.labels[idx]
    res = BackgroundGap()(model, x, labels, None, dataset=ds, indices=idx, labels=labels)
    with torch.no_grad():
        same = model(ds.split("test", "same_class_background").images[idx]).argmax(1) == labels
        other = model(ds.split("test", "other_class_background").images[idx]).argmax(1) == labels
    torch.testing.assert_close(res.scores, same.float() - other.float())
    assert res.aggregate() == pytest.approx(same.float().mean().item() - other.float().mean().item())
    assert set(res.scores.tolist()) <= {-1.0, 0.0, 1.0}
    # a background-blind model has no gap
    blind = BackgroundGap()(ForegroundOnly(), x, labels, None, dataset=ds, indices=idx)
    assert torch.all(blind.scores == 0)


def test_background_gap_errors():
    ds = SpuriousShapes(n_test=16)
    x = ds.split("test").images[:4]

    class Plain:
        def split(self, name, variant="original"):
            return None

    with pytest.raises(ValueError, match="background-swapped variants"):
        BackgroundGap()(ForegroundOnly(), x, torch.zeros(4), None, dataset=Plain())
    with pytest.raises(ValueError, match="background-swapped variants"):
        BackgroundGap()(ForegroundOnly(), x, torch.zeros(4), None)
    with pytest.raises(ValueError, match="labels in the context differ"):
        BackgroundGap()(ForegroundOnly(), x, torch.zeros(4), None, dataset=ds, indices=torch.arange(4), labels=torch.tensor([3, 3, 3, 3]))


def test_conservation_of_lrp_relevance_uses_the_zero_output_reference():
    # LRP's baseline() is None: its relevance should sum to f_c(x). LRP-0 on a bias-free ReLU net conserves exactly.
    from methods.lrp import LRP

    model, x = relu_cnn(bias=False), torch.randn(4, 3, 8, 8)
    t = model(x).argmax(1)
    lrp = LRP(composite="epsilon", epsilon=1e-9)
    relevance = lrp(model, x, t)
    result = Conservation()(model, x, t, relevance, explainer=lrp)
    assert torch.all(result.scores < 1e-4)
    with pytest.raises(ValueError, match="reference=baseline, but LRP has no baseline"):
        Conservation(reference="baseline")(model, x, t, relevance, explainer=lrp)
