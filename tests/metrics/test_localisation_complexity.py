"""Top-k intersection, localisation AUC, attribution localisation, energy pointing game, complexity, effective complexity: known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy, mannwhitneyu

from metrics.attribution_localisation import AttributionLocalisation
from metrics.complexity import Complexity
from metrics.effective_complexity import EffectiveComplexity
from metrics.energy_pointing_game import EnergyPointingGame, bounding_boxes
from metrics.localisation_auc import LocalisationAUC
from metrics.top_k_intersection import TopKIntersection
from tests.toy_models import LinearModel


@pytest.fixture(scope="module")
def masked():
    masks = torch.zeros(4, 1, 8, 8, dtype=torch.bool)
    for i in range(4):
        masks[i, :, 1 + i: 5 + i, 2: 6] = True        # 16 pixels each
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    return x, masks


def test_top_k_intersection(masked):
    x, masks = masked
    m = masks.expand_as(x).float()
    tki = TopKIntersection(k=0.25, seed=0)                       # k = 16 = |M|
    assert torch.equal(tki(None, x, None, m, masks=masks).scores, torch.ones(4))
    assert torch.equal(tki(None, x, None, 1 - m, masks=masks).scores, torch.zeros(4))
    wide = TopKIntersection(k=0.5, seed=0)(None, x, None, m, masks=masks)     # k = 32 > |M|: at best 1/2
    assert torch.equal(wide.scores, torch.full((4,), 0.5)) and torch.equal(wide.extras["best"], torch.full((4,), 0.5))
    const = TopKIntersection(k=0.25, seed=0)(None, x.repeat(50, 1, 1, 1), None, torch.ones(200, 3, 8, 8), masks=masks.repeat(50, 1, 1, 1))
    assert abs(const.aggregate() - 0.25) < 0.03                   # ties broken at random: the area fraction
    with pytest.raises(ValueError, match="top_k_intersection.k"):
        TopKIntersection(k=0)


def test_localisation_auc_matches_mann_whitney(masked):
    x, masks = masked
    auc = LocalisationAUC()
    m = masks.expand_as(x).float()
    assert torch.equal(auc(None, x, None, m, masks=masks).scores, torch.ones(4))
    assert torch.equal(auc(None, x, None, -m, masks=masks).scores, torch.zeros(4))
    assert torch.equal(auc(None, x, None, torch.ones_like(x), masks=masks).scores, torch.full((4,), 0.5))
    a = torch.randint(0, 4, x.shape, generator=torch.Generator().manual_seed(1)).float()     # many ties
    ours = auc(None, x, None, a, masks=masks).scores
    pooled = a.sum(1).flatten(1).numpy()
    inside = masks.flatten(1).numpy()
    for i in range(4):
        u = mannwhitneyu(pooled[i][inside[i]], pooled[i][~inside[i]]).statistic
        assert ours[i].item() == pytest.approx(u / (inside[i].sum() * (~inside[i]).sum()), abs=1e-6)
    empty = torch.zeros_like(masks)
    with pytest.warns(UserWarning, match="empty foreground mask"):
        assert torch.isnan(auc(None, x, None, a, masks=empty).scores).all()


def test_attribution_localisation_weighted_and_only_correct(masked):
    x, masks = masked
    uniform = torch.ones_like(x)
    plain = AttributionLocalisation()(None, x, None, uniform, masks=masks)
    torch.testing.assert_close(plain.scores, torch.full((4,), 0.25))
    weighted = AttributionLocalisation(weighted=True)(None, x, None, uniform, masks=masks)
    torch.testing.assert_close(weighted.scores, torch.ones(4))          # a uniform map scores 1 on every image
    inside = AttributionLocalisation(weighted=True)(None, x, None, masks.expand_as(x).float(), masks=masks)
    torch.testing.assert_close(inside.scores, torch.full((4,), 4.0))    # 1 / area
    model = LinearModel(size=8)
    labels = model(x).argmax(1)
    labels[2] = (labels[2] + 1) % 3
    with pytest.warns(UserWarning, match="misclassified"):
        res = AttributionLocalisation(only_correct=True)(model, x, None, uniform, masks=masks, labels=labels)
    assert math.isnan(res.scores[2]) and res.dropped == {"misclassified": 1}
    with pytest.raises(ValueError, match="labels"):
        AttributionLocalisation(only_correct=True)(model, x, None, uniform, masks=masks)


def test_energy_pointing_game_uses_the_bounding_box():
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[0, 1, 1] = masks[0, 4, 5] = True                          # box rows 1..4, cols 1..5: 20 pixels
    masks[1, 2:4, 2:4] = True
    box = bounding_boxes(masks)
    assert box[0].sum() == 20 and box[0, 1:5, 1:6].all() and torch.equal(box[1], masks[1])
    x = torch.zeros(2, 1, 8, 8)
    epg = EnergyPointingGame()
    res = epg(None, x, None, torch.ones(2, 1, 8, 8), masks=masks)
    torch.testing.assert_close(res.scores, torch.tensor([20 / 64, 4 / 64]))
    torch.testing.assert_close(res.extras["region_area"], res.scores)
    assert torch.equal(epg(None, x, None, box.unsqueeze(1).float() - 0.5 * (~box).unsqueeze(1).float(), masks=masks).scores, torch.ones(2))
    torch.testing.assert_close(EnergyPointingGame(region="mask")(None, x, None, torch.ones(2, 1, 8, 8), masks=masks).scores,
                               torch.tensor([2 / 64, 4 / 64]))


def test_complexity_is_the_entropy_of_the_shares():
    a = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0)) - 0.5
    res = Complexity()(None, a, None, a)
    for i in range(3):
        assert res.scores[i].item() == pytest.approx(entropy(a[i].abs().sum(0).flatten().numpy().astype(np.float64)), abs=1e-5)
    one = torch.zeros(1, 3, 8, 8)
    one[0, 0, 3, 3] = 2.0
    assert Complexity()(None, one, None, one).scores[0] == 0
    uniform = Complexity()(None, one, None, torch.ones_like(one))
    assert uniform.scores[0].item() == pytest.approx(math.log(64)) and uniform.extras["normalised"][0].item() == pytest.approx(1.0)
    assert Complexity(pooling="none")(None, one, None, torch.ones_like(one)).scores[0].item() == pytest.approx(math.log(192))
    with pytest.warns(UserWarning, match="all-zero map"):
        assert math.isnan(Complexity()(None, one, None, torch.zeros_like(one)).scores[0])


def test_effective_complexity_counts_features_above_the_relative_threshold():
    a = torch.zeros(2, 3, 4, 4)
    a[0, :, 0, :3] = 5.0            # 3 pixels
    a[1] = 1e-3
    a[1, 0, 0, 0] = 1e3             # one pixel, the rest below 1e-5 of it
    res = EffectiveComplexity()(None, a, None, a)
    assert res.extras["count"].tolist() == [3, 1] and torch.equal(res.scores, torch.tensor([3 / 16, 1 / 16]))
    assert EffectiveComplexity(eps=0)(None, a, None, a).extras["count"].tolist() == [3, 16]
    torch.testing.assert_close(EffectiveComplexity()(None, a, None, 7 * a).scores, res.scores)     # scale-free
    with pytest.raises(ValueError, match="effective_complexity.eps"):
        EffectiveComplexity(eps=1)
