"""DeepLIFT (Captum's rescale rule) on max-pooling models: exact where Captum's max-pool rule is, refused in one line
where the map misses f(x) - f(x') by more than the tolerance (before: only a warning)."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from harness.models import SmallCNN

adapter = pytest.importorskip("methods.captum_adapter")
pytest.importorskip("captum.attr")


def test_deeplift_refuses_where_captums_max_pool_rule_misses_the_delta_and_runs_where_it_is_exact():
    x, t = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 2])
    torch.manual_seed(0)
    pooled = SmallCNN().eval()  # two 2x2 max-pools: Captum's rule misses the delta by 0.15
    with pytest.raises(ValueError, match="max-pool rule is not summation-to-delta exact.*use method=integrated_gradients") as info:
        adapter.DeepLift()(pooled, x, t)
    assert "\n" not in str(info.value)
    averaged = SmallCNN().eval()
    averaged.load_state_dict(pooled.state_dict())
    averaged.features[4], averaged.features[9] = nn.AvgPool2d(2), nn.AvgPool2d(2)  # the same net, average pooling: exact
    maps = adapter.DeepLift()(averaged, x, t)
    assert adapter.completeness_gap(averaged, x, t, maps, torch.zeros_like(x)) < 1e-4
    torch.manual_seed(0)
    one = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()
    with warnings.catch_warnings(record=True) as caught:  # one max-pool after one conv: exact (1e-7), neither refused nor warned
        warnings.simplefilter("always")
        maps = adapter.DeepLift()(one, x, t)
    assert not [w for w in caught if "f(baseline)" in str(w.message)]
    assert adapter.completeness_gap(one, x, t, maps, torch.zeros_like(x)) < 1e-4
