"""The wider catalogue: localisation, ROAD, randomisation, robustness, sparseness; and every YAML on its own."""
from __future__ import annotations

import math
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import conf
from harness.datasets import SpuriousShapes
from harness.models import SmallCNN
from methods.saliency import Saliency
from metrics.background_gap import BackgroundGap
from metrics.conservation import Conservation
from metrics.infidelity import Infidelity
from metrics.max_sensitivity import MaxSensitivity
from metrics.pointing_game import PointingGame
from metrics.randomization import Randomization, average_ranks, batch_ssim, spearman
from metrics.relevance_mass import RelevanceMass
from metrics.relevance_rank import RelevanceRank
from metrics.result import MetricResult
from metrics.road import ROAD
from metrics.sparseness import Sparseness
from metrics.spurious_background import SpuriousBackground
from tests.toy_models import LinearModel, assert_same_snapshot, model_snapshot

CONF = Path(conf.__file__).parent / "metric"


def square_masks(n=4, size=12):
    masks = torch.zeros(n, 1, size, size, dtype=torch.bool)
    for i in range(n):
        masks[i, :, 1 + i: 6 + i, 2: 7 + i] = True
    return masks


# -- localisation --------------------------------------------------------------------------------------
def test_pointing_game():
    masks = square_masks()
    x = torch.zeros(4, 3, 12, 12)
    inside = masks.expand(-1, 3, -1, -1).float() * 2 + torch.rand(x.shape) * 0.1
    pg = PointingGame()
    assert torch.all(pg(None, x, None, inside, masks=masks).scores == 1)
    assert torch.all(pg(None, x, None, 1 - masks.expand(-1, 3, -1, -1).float(), masks=masks).scores == 0)
    flat = pg(None, x, None, torch.ones_like(x), masks=masks)  # all pixels tie: not a hit
    assert torch.all(flat.scores == 0) and torch.all(flat.extras["hit_any"] == 1)
    near = torch.zeros_like(x)
    near[:, :, 0, 0] = 1.0   # mask 0 starts at (1, 2): the peak (0, 0) is outside, 2 px away (Chebyshev)
    assert pg(None, x, None, near, masks=masks).scores[0] == 0
    assert PointingGame(tolerance=2)(None, x, None, near, masks=masks).scores[0] == 1
    empty = masks.clone()
    empty[2] = False
    res = pg(None, x, None, inside, masks=empty)
    assert math.isnan(res.scores[2]) and res.higher_is_better
    with pytest.raises(ValueError, match="tolerance"):
        PointingGame(tolerance=-1)


def test_relevance_mass_and_rank():
    masks = square_masks()
    x = torch.zeros(4, 3, 12, 12)
    m3 = masks.expand(-1, 3, -1, -1).float()
    area = masks.flatten(1).float().mean(1)
    rm, rr = RelevanceMass(), RelevanceRank(seed=0)
    assert torch.all(rm(None, x, None, m3 * torch.rand(x.shape), masks=masks).scores == 1)
    torch.testing.assert_close(rm(None, x, None, torch.ones_like(x), masks=masks).scores, area)
    assert torch.all(rr(None, x, None, m3, masks=masks).scores == 1)
    assert torch.all(rr(None, x, None, 1 - m3, masks=masks).scores == 0)
    # a constant map: the tie-break is a seeded random order, so about the area fraction, over many images
    big = square_masks(4).repeat(50, 1, 1, 1)
    const = rr(None, x.repeat(50, 1, 1, 1), None, torch.ones(200, 3, 12, 12), masks=big)
    assert abs(const.aggregate() - big.flatten(1).float().mean().item()) < 0.03
    assert torch.equal(const.scores, rr(None, x.repeat(50, 1, 1, 1), None, torch.ones(200, 3, 12, 12), masks=big).scores)
    empty = masks.clone()
    empty[0] = False
    assert math.isnan(rm(None, x, None, m3, masks=empty).scores[0]) and math.isnan(rr(None, x, None, m3, masks=empty).scores[0])
    assert math.isnan(rm(None, x, None, -torch.ones_like(x), masks=masks).scores[0])      # no positive mass
    assert rm(None, x, None, -torch.ones_like(x), masks=masks).higher_is_better


def test_sparseness_gini():
    x = torch.zeros(3, 3, 8, 8)
    a = torch.rand(3, 3, 8, 8)
    a[1] = 1.0
    a[2] = 0.0
    a[2, 0, 0, 0] = 5.0
    res = Sparseness()(None, x, None, a)
    v = np.sort(np.abs(a[0].numpy().ravel()))
    n = v.size
    gini = ((2 * np.arange(1, n + 1) - n - 1) * v).sum() / (n * v.sum())
    assert res.scores[0].item() == pytest.approx(gini, abs=1e-6)
    assert res.scores[1].item() == pytest.approx(0.0, abs=1e-6)
    assert res.scores[2].item() == pytest.approx(1 - 1 / n, abs=1e-6)
    assert math.isnan(Sparseness()(None, x[:1], None, torch.zeros(1, 3, 8, 8)).scores[0])
    assert Sparseness(pooling="abs_sum")(None, x, None, a).scores[2].item() == pytest.approx(1 - 1 / 64, abs=1e-6)


# -- ROAD ---------------------------------------------------------------------------------------------
def test_road_rgb_both_orders_and_batch_invariance():
    model = LinearModel(size=10, bias=True, seed=2).eval()
    x = torch.randn(6, 3, 10, 10, generator=torch.Generator().manual_seed(5))
    cls = model(x).argmax(1)
    attr = model.linear.weight.detach()[cls].view(6, 3, 10, 10) * x
    road = ROAD(score="logit", target="predicted", seed=3)
    good, bad = road(model, x, cls, attr), road(model, x, cls, -attr)
    assert good.curves.shape == (6, 7) and torch.allclose(good.curve_x, torch.tensor([.1, .2, .3, .4, .5, .7, .9]))
    assert {"morf", "lerf", "lerf_minus_morf", "morf_10", "lerf_90"} <= set(good.extras)
    assert good.higher_is_better is False
    # removing the most positive contributions lowers the target logit faster than removing the least
    assert good.extras["lerf_minus_morf"].mean() > 0 > bad.extras["lerf_minus_morf"].mean()
    torch.testing.assert_close(good.scores, good.extras["morf"])
    torch.testing.assert_close(bad.extras["morf"], good.extras["lerf"], atol=1e-5, rtol=0)  # inverted map swaps orders
    parts = torch.cat([road(model, x[i:j], cls[i:j], attr[i:j], indices=torch.arange(i, j)).scores for i, j in ((0, 1), (1, 6))])
    torch.testing.assert_close(parts, good.scores, atol=1e-5, rtol=0)
    acc = ROAD()(model, x, cls, attr, labels=cls)
    assert set(acc.curves.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="percentages"):
        ROAD(percentages=[50, 10])


# -- randomisation ------------------------------------------------------------------------------------
def test_spearman_and_ssim_helpers():
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (4, 50), generator=gen).double()   # many ties
    b = a + torch.randn(4, 50, generator=gen)
    ours = spearman(a, b)
    for i in range(4):
        assert ours[i].item() == pytest.approx(spearmanr(a[i], b[i]).statistic, abs=1e-10)
    torch.testing.assert_close(average_ranks(torch.tensor([[3.0, 1.0, 3.0, 2.0]])), torch.tensor([[2.5, 0.0, 2.5, 1.0]], dtype=torch.float64))
    assert math.isnan(spearman(torch.ones(1, 5), torch.rand(1, 5))[0])
    x, y = torch.rand(3, 16, 16, generator=gen), torch.rand(3, 16, 16, generator=gen)
    batched = batch_ssim(x, y)
    for i in range(3):
        norm = lambda t: ((t - t.min()) / (t.max() - t.min())).double().numpy()  # noqa: E731
        assert batched[i].item() == pytest.approx(structural_similarity(norm(x[i]), norm(y[i]), data_range=1.0), abs=1e-6)


class InputMap:
    """A 'method' that ignores the model (an edge-detector-like control): it must fail the sanity check."""

    def __call__(self, model, inputs, targets):
        return inputs.abs()


def test_randomization_cascade():
    torch.manual_seed(0)
    model = SmallCNN(width=4).eval()
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    t = model(x).argmax(1)
    sal = Saliency()
    before = model_snapshot(model)
    res = Randomization(seed=0)(model, x, t, sal(model, x, t), explainer=sal)
    assert_same_snapshot(before, model_snapshot(model))
    assert res.curves.shape == (3, 6) and torch.equal(res.curve_x, torch.arange(1.0, 7.0))
    assert res.scores.max() < 0.9 and res.higher_is_better is False
    control = Randomization(seed=0)(model, x, t, InputMap()(model, x, t), explainer=InputMap())
    torch.testing.assert_close(control.scores, torch.ones(3))
    torch.testing.assert_close(control.extras["ssim_final"], torch.ones(3), atol=1e-6, rtol=0)
    again = Randomization(seed=0)(model, x, t, sal(model, x, t), explainer=sal)
    assert torch.equal(again.scores, res.scores)
    indep = Randomization(cascade=False, max_layers=2, seed=0)(model, x, t, sal(model, x, t), explainer=sal)
    assert indep.curves.shape == (3, 2)
    with pytest.raises(ValueError, match="explainer"):
        Randomization()(model, x, t, x)


# -- robustness ---------------------------------------------------------------------------------------
class Identity:
    def __call__(self, model, inputs, targets):
        return inputs.clone()


def test_max_sensitivity_uniform_and_fgsm():
    torch.manual_seed(0)
    model = SmallCNN(width=4).eval()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    t = model(x).argmax(1)
    r, s = 0.05, 6
    ms = MaxSensitivity(radius=r, n_samples=s, seed=1)
    res = ms(model, x, t, x, explainer=Identity())
    deltas = ms.perturbed(model, x, t, torch.arange(4)) - x.unsqueeze(0)
    assert deltas.abs().max() <= r + 1e-7 and deltas.abs().max() > 0.9 * r
    expected = (deltas.flatten(2).norm(dim=2) / x.flatten(1).norm(dim=1)).amax(0)
    torch.testing.assert_close(res.scores, expected.float())
    assert not torch.equal(deltas[0], deltas[1])  # the draws differ
    parts = torch.cat([ms(model, x[i:i + 2], t[i:i + 2], x[i:i + 2], explainer=Identity(), indices=torch.arange(i, i + 2)).scores for i in (0, 2)])
    torch.testing.assert_close(parts, res.scores)
    fgsm = MaxSensitivity(radius=r, n_samples=s, perturbation="fgsm")(model, x, t, x, explainer=Identity())
    bound = r * math.sqrt(x[0].numel()) / x.flatten(1).norm(dim=1)
    assert torch.all(fgsm.scores <= bound + 1e-6) and torch.all(fgsm.scores > 0.5 * bound)
    const = MaxSensitivity()(model, x, t, torch.ones_like(x), explainer=lambda m, i, tt: torch.ones_like(i))
    assert torch.all(const.scores == 0)
    with pytest.raises(ValueError, match="explainer"):
        MaxSensitivity()(model, x, t, x)


def test_infidelity_zero_for_gradient_of_linear_model():
    model = LinearModel(size=6, bias=True, seed=1).eval().double()
    x = torch.randn(5, 3, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = model(x).argmax(1)
    grad = model.linear.weight.detach()[t].view(5, 3, 6, 6)  # f(x) - f(x - I) = w^T I exactly
    inf = Infidelity(n_perturbations=8, seed=0)
    assert inf(model, x, t, grad).scores.max() < 1e-8
    rand = inf(model, x, t, torch.randn(x.shape, dtype=torch.float64))
    assert torch.all(rand.scores > 1e-4) and rand.higher_is_better is False
    # seeded: same seed same scores; the repeats are distinct draws (identical repeats would make n=8 equal n=1)
    noise_map = torch.randn(x.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    assert torch.equal(inf(model, x, t, noise_map).scores, Infidelity(n_perturbations=8, seed=0)(model, x, t, noise_map).scores)
    assert not torch.allclose(inf(model, x, t, noise_map).scores, Infidelity(n_perturbations=1, seed=0)(model, x, t, noise_map).scores)
    assert not torch.allclose(inf(model, x, t, noise_map).scores, Infidelity(n_perturbations=8, seed=1)(model, x, t, noise_map).scores)
    scaled = Infidelity(n_perturbations=8, normalise=True, seed=0)(model, x, t, 3 * grad)
    assert scaled.scores.max() < 1e-8 and torch.allclose(scaled.extras["beta"], torch.full((5,), 1 / 3))
    a = inf(model, x, t, grad * 0.5).scores
    b = torch.cat([inf(model, x[i:i + 1], t[i:i + 1], grad[i:i + 1] * 0.5, indices=torch.tensor([i])).scores for i in range(5)])
    torch.testing.assert_close(a, b)


def test_infidelity_accepts_the_old_normalize_spelling_with_a_deprecation_warning(make_cfg):
    """normalise is max-sensitivity's spelling; metric.infidelity.normalize=true (older sweeps) still composes and means the same."""
    from harness.build import build

    with pytest.warns(DeprecationWarning, match="infidelity.normalize is deprecated; use infidelity.normalise"):
        old = Infidelity(normalize=True)
    assert old.normalise is True and Infidelity(normalise=True).normalise is True and Infidelity().normalise is False
    with pytest.raises(ValueError, match="disagree"):
        Infidelity(normalise=True, normalize=False)
    cfg = make_cfg("metric=[infidelity]", "metric.infidelity.normalize=true")
    with pytest.warns(DeprecationWarning):
        assert build(cfg.metric.infidelity, "metric.infidelity", seed=0).normalise is True


# -- every YAML on its own ----------------------------------------------------------------------------
class _NoRetrain:
    """A metrics.types.Retrain stand-in for ROAR's YAML: makes the modified images, returns the given model untrained."""

    def __init__(self, model, split):
        self.model, self.train_images, self.train_labels = model, split.images[:4], split.labels[:4]

    def __call__(self, images, identity):
        assert images().shape == self.train_images.shape
        return self.model


@pytest.fixture(scope="module")
def yaml_setup():
    torch.manual_seed(0)
    ds = SpuriousShapes(n_test=16, image_size=32)
    test = ds.split("test")
    model = SmallCNN(in_channels=3, num_classes=4, width=8).eval()
    x = test.images[:3]
    sal = Saliency()
    t = model(x).argmax(1)
    ctx = dict(labels=test.labels[:3], masks=test.masks[:3], groups=test.groups[:3], explainer=sal, mean=ds.mean,
               std=ds.std, dataset=ds, indices=torch.arange(3), unknown_key="ignored", retrain=_NoRetrain(model, test))
    return model, x, t, sal(model, x, t), ctx


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_metric_yaml_instantiates_alone(path, yaml_setup):
    model, x, t, attr, ctx = yaml_setup
    text = path.read_text()
    assert text.splitlines()[0] == f"# @package metric.{path.stem}"  # multi-select: composed under cfg.metric.NAME
    cfg = OmegaConf.load(path)
    assert "${" not in text
    metric = hydra.utils.instantiate(cfg)
    before = model_snapshot(model)
    res = metric(model, x, t, attr, **ctx)
    assert_same_snapshot(before, model_snapshot(model))
    assert isinstance(res, MetricResult) and res.scores.shape == (3,)
    assert all(v.shape == (3,) for v in res.extras.values())
    if res.curves is not None:
        assert res.curves.shape == (3, res.curve_x.shape[0])
    again = hydra.utils.instantiate(cfg)(model, x, t, attr, **ctx)
    assert torch.equal(torch.nan_to_num(res.scores, nan=-7.0), torch.nan_to_num(again.scores, nan=-7.0))
    if "seed" in cfg:
        cfg.seed = 123
        one = hydra.utils.instantiate(cfg)(model, x, t, attr, **ctx).scores
        two = hydra.utils.instantiate(cfg)(model, x, t, attr, **ctx).scores
        assert torch.equal(torch.nan_to_num(one, nan=-7.0), torch.nan_to_num(two, nan=-7.0))


# -- constructor validation: one-line ValueErrors naming the key -------------------------------------------
@pytest.mark.parametrize("factory, match", [
    (lambda: Conservation(tolerance=-1), "conservation.tolerance"),
    (lambda: Conservation(reference="input"), "conservation.reference"),
    (lambda: SpuriousBackground(only_correct="yes"), "only_correct"),
    (lambda: BackgroundGap(split="val"), "background_gap.split"),
    (lambda: PointingGame(pooling="mean"), "pointing_game.pooling"),
    (lambda: RelevanceMass(variant="positive"), "relevance_mass.variant"),
    (lambda: RelevanceRank(seed="a"), "relevance_rank.seed"),
    (lambda: ROAD(order="both"), "road.order"), (lambda: ROAD(noise=-0.1), "road.noise"),
    (lambda: Randomization(similarity="hog"), "randomization.similarity"), (lambda: Randomization(max_layers=0), "max_layers"),
    (lambda: MaxSensitivity(radius=0), "max_sensitivity.radius"), (lambda: MaxSensitivity(perturbation="pgd"), "perturbation"),
    (lambda: Infidelity(n_perturbations=0), "infidelity.n_perturbations"), (lambda: Infidelity(normalise=1), "normalise"),
    (lambda: Sparseness(pooling="sum"), "sparseness.pooling"),
])
def test_constructor_validation(factory, match):
    with pytest.raises(ValueError, match=match) as err:
        factory()
    assert "\n" not in str(err.value) and "got" in str(err.value)
