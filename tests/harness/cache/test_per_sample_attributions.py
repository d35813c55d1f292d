"""Cached attribution maps are found per sample across stored batches when the maps do not depend on the batch (issue 17)."""
import pytest
import torch

import harness.cache.stages as stages
from harness.build import build
from harness.cache import cached_attribution_batch
from methods import Explainer
from tests.toy_models import relu_cnn

CPU = torch.device("cpu")


class OwnExplainer:
    """An explainer outside this project's methods: nothing is known about its batching, so it is cached per batch."""

    def __call__(self, model, inputs, targets):
        return inputs.abs()

    def forward_passes_per_sample(self, shape):
        return 1


@pytest.fixture
def explained(monkeypatch) -> list[int]:
    """How many samples each explainer call computed."""
    real, sizes = stages.explain_samples, []
    monkeypatch.setattr(stages, "explain_samples", lambda e, m, x, t, ids=None: sizes.append(len(x)) or real(e, m, x, t, ids))
    return sizes


def _maps(cfg, explainer: Explainer, inputs, indices, size, cache):
    model = relu_cnn(classes=4).eval()
    targets = indices % 4
    parts = [cached_attribution_batch(cfg, explainer, model, "toy", inputs[rows], targets[rows], indices[rows], CPU, cache)
             for rows in torch.arange(len(indices)).split(size)]
    return torch.cat([maps for maps, _ in parts]), [reused for _, reused in parts]


def test_a_rerun_at_another_batch_size_reuses_every_map(make_cfg, explained, tmp_path):
    cfg = make_cfg("method=smoothgrad", "method.n_samples=2")   # stochastic, drawn per sample id
    explainer = build(cfg.method, "method", seed=cfg.seed)
    inputs, indices = torch.randn(8, 3, 16, 16), torch.tensor([3, 9, 12, 20, 31, 40, 41, 50])
    first, reused = _maps(cfg, explainer, inputs, indices, 4, tmp_path)
    assert reused == [0, 0] and explained == [4, 4]
    again, reused = _maps(cfg, explainer, inputs, indices, 2, tmp_path)
    assert reused == [2, 2, 2, 2] and explained == [4, 4] and torch.equal(again, first)
    # a batch partly stored: only the new sample is explained, and its map is the one a whole batch gives
    more = torch.cat([inputs[[1, 6]], torch.randn(1, 3, 16, 16)])
    mixed, reused = _maps(cfg, explainer, more, torch.tensor([9, 41, 77]), 3, tmp_path)
    assert reused == [2] and explained == [4, 4, 1] and torch.equal(mixed[:2], first[[1, 6]])
    alone, _ = _maps(cfg, explainer, more[2:], torch.tensor([77]), 1, tmp_path / "fresh")
    assert torch.allclose(mixed[2], alone[0], atol=1e-6)


@pytest.mark.parametrize("method", [("method=expected_gradients", "method.n_samples=2"), ()])
def test_batch_dependent_maps_are_cached_per_batch_only(make_cfg, explained, tmp_path, method):
    cfg = make_cfg(*method)
    explainer = build(cfg.method, "method", seed=cfg.seed) if method else OwnExplainer()  # background=batch; or not ours
    inputs, indices = torch.randn(4, 3, 16, 16), torch.arange(4)
    _maps(cfg, explainer, inputs, indices, 4, tmp_path)
    _, reused = _maps(cfg, explainer, inputs, indices, 2, tmp_path)
    assert reused == [0, 0] and explained == [4, 2, 2]
    _, reused = _maps(cfg, explainer, inputs, indices, 2, tmp_path)
    assert reused == [2, 2] and explained == [4, 2, 2]   # the same batches again: stored per batch


@pytest.mark.parametrize("overrides, per_sample", [
    (("method=saliency",), True), (("method=smoothgrad",), True), (("method=integrated_gradients",), True),
    (("method=expected_gradients", "method.background=train"), True), (("method=expected_gradients",), False),
    (("method=gradient_shap",), True), (("method=deeplift_shap",), True), (("method=deeplift",), True),
    (("method=shapley_sampling",), False), (("method=captum", "method.name=Saliency"), True),
])
def test_which_explainers_reuse_maps_per_sample(make_cfg, overrides, per_sample):
    pytest.importorskip("captum")
    cfg = make_cfg(*overrides)
    assert stages.reusable_per_sample(build(cfg.method, "method", seed=cfg.seed)) is per_sample
