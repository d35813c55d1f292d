"""What made the numbers misleading: constant maps after randomisation, insertion's blur start, dropped samples."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from harness.models import SmallCNN
from metrics.insertion import Insertion
from metrics.max_sensitivity import MaxSensitivity
from metrics.randomization import Randomization
from metrics.result import undefined
from tests.toy_models import LinearModel


class ZeroAfterRandomisation:
    """Returns the input on the pristine model and an all-zero map once any parameter has changed (Grad-CAM's typical failure-to-fire)."""

    def __init__(self, model):
        self.reference = {k: v.clone() for k, v in model.state_dict().items()}

    def __call__(self, model, inputs, targets):
        same = all(torch.equal(v, self.reference[k]) for k, v in model.state_dict().items())
        return inputs.abs() if same else torch.zeros_like(inputs)


def test_randomization_constant_map_scores_zero_and_keeps_every_sample():
    torch.manual_seed(0)
    model = SmallCNN(width=4).eval()
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    t = model(x).argmax(1)
    explainer = ZeroAfterRandomisation(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # nothing dropped, nothing to warn about
        res = Randomization(seed=0, max_layers=3)(model, x, t, explainer(model, x, t), explainer=explainer)
    assert torch.equal(res.scores, torch.zeros(3)) and not torch.isnan(res.curves).any() and res.dropped == {}
    for k in ("spearman", "spearman_abs", "ssim"):
        assert torch.equal(res.extras[f"{k}_final"], torch.zeros(3))
    # a constant *original* map is undefined: NaN, counted and warned about
    with pytest.warns(UserWarning, match="randomization: 1 of 3 samples undefined \\(constant original map\\)"):
        const = Randomization(seed=0, max_layers=2)(model, x, t, torch.cat([torch.ones(1, 3, 16, 16), x[1:].abs()]), explainer=explainer)
    assert math.isnan(const.scores[0]) and not torch.isnan(const.scores[1:]).any()
    assert const.dropped == {"constant original map": 1}


def test_insertion_blur_has_a_pixel_floor_and_logs_the_start():
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    ins = Insertion()
    floor = ins.substrate_for(x, torch.arange(2), {})
    old = Insertion(blur_min_sigma=0).substrate_for(x, torch.arange(2), {})
    # 0.0223 x 16 px = 0.36 px leaves the image nearly intact; the 4 px floor does not
    assert (old - x).norm() < 0.35 * x.norm() and (floor - x).norm() > 0.75 * x.norm()
    big = torch.randn(1, 1, 300, 300, generator=torch.Generator().manual_seed(0))   # 0.0223 x 300 = 6.7 px > the floor
    torch.testing.assert_close(Insertion().substrate_for(big, torch.arange(1), {}),
                               Insertion(blur_min_sigma=0).substrate_for(big, torch.arange(1), {}))
    model = LinearModel(size=16)
    t = model(x).argmax(1)
    res = Insertion(steps=0.25, seed=0, abpc=False)(model, x, t, x)
    torch.testing.assert_close(res.extras["start_score"], res.curves[:, 0])
    assert (res.extras["start_score"] < 0.5 * res.extras["clean_score"]).all()       # the start carries little of the class
    with pytest.warns(UserWarning, match="still carries the class"):                 # the old 0.36 px blur: almost the clean score
        old_start = Insertion(steps=0.25, seed=0, abpc=False, blur_min_sigma=0)(model, x, t, x).extras["start_score"]
    assert (old_start > 0.95 * res.extras["clean_score"]).all()
    torch.testing.assert_close(res.extras["clean_score"], model(x).softmax(1).gather(1, t.view(-1, 1)).squeeze(1))
    with pytest.raises(ValueError, match="blur_min_sigma"):
        Insertion(blur_min_sigma=-1)


def test_insertion_warns_when_the_start_still_carries_the_class():
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))

    class Constant(torch.nn.Module):   # the same output whatever the input: the start scores as the clean image
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, v):
            return torch.tensor([[2.0, 0.0, 0.0]]).expand(len(v), -1) + 0 * self.w

    with pytest.warns(UserWarning, match="insertion: the blur start image scores .* of the clean"):
        Insertion(steps=0.5, abpc=False)(Constant(), x, torch.zeros(2, dtype=torch.long), x)


def test_max_sensitivity_unnormalised_is_yeh_definition():
    torch.manual_seed(0)
    model = SmallCNN(width=4).eval()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    t = model(x).argmax(1)
    identity = lambda m, i, tt: i.clone()  # noqa: E731
    kw = dict(radius=0.05, n_samples=4, seed=1)
    normalised = MaxSensitivity(**kw)(model, x, t, x, explainer=identity)
    plain = MaxSensitivity(normalise=False, **kw)(model, x, t, x, explainer=identity)
    deltas = MaxSensitivity(**kw).perturbed(model, x, t, torch.arange(3)) - x.unsqueeze(0)
    torch.testing.assert_close(plain.scores, deltas.flatten(2).norm(dim=2).amax(0).float())
    torch.testing.assert_close(normalised.scores, plain.scores / x.flatten(1).norm(dim=1))
    zero = torch.zeros_like(x)
    with pytest.warns(UserWarning, match="3 of 3 samples undefined"):
        assert torch.isnan(MaxSensitivity(**kw)(model, x, t, zero, explainer=identity).scores).all()
    assert not torch.isnan(MaxSensitivity(normalise=False, **kw)(model, x, t, zero, explainer=identity).scores).any()


def test_undefined_counts_each_sample_once_under_its_first_reason():
    a, b = torch.tensor([True, False, True]), torch.tensor([True, True, False])
    with pytest.warns(UserWarning) as record:
        assert undefined("m", {"a": a, "b": b, "c": torch.zeros(3, dtype=torch.bool)}, 3) == {"a": 2, "b": 1}
    assert len(record) == 2


def test_older_metrics_name_their_dropped_samples():
    from metrics.pointing_game import PointingGame
    from metrics.relevance_mass import RelevanceMass
    from metrics.sparseness import Sparseness

    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[1, 2:5, 2:5] = True
    with pytest.warns(UserWarning, match="pointing_game: 1 of 2 samples undefined \\(empty foreground mask\\)"):
        assert PointingGame()(None, x, None, x, masks=masks).dropped == {"empty foreground mask": 1}
    with pytest.warns(UserWarning, match="relevance_mass"):
        assert RelevanceMass()(None, x, None, x.abs(), masks=masks).dropped == {"empty foreground mask": 1}
    maps = x.clone()
    maps[0] = 0
    with pytest.warns(UserWarning, match="sparseness"):
        assert Sparseness()(None, x, None, maps).dropped == {"all-zero map": 1}
    from metrics.result import MetricResult
    assert MetricResult(scores=torch.tensor([1.0, math.nan]), higher_is_better=True).dropped == {"undefined (no reason given)": 1}
