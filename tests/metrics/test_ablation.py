"""Deletion / insertion engine: analytic curves, ordering of good/random/bad maps, invariances, ROAD imputation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.models import SmallCNN
from metrics.ablation import AblationCurve
from metrics.deletion import Deletion
from metrics.insertion import Insertion
from metrics.road_imputation import linear_impute, noisy_linear_impute
from tests.metrics.test_road_imputation_solver import reference as road_reference  # the definition, one sparse solve
from tests.toy_models import LinearModel, assert_same_snapshot, model_snapshot


def linear_setup(n=4, size=8, seed=0):
    model = LinearModel(size=size, bias=True, seed=seed).eval()
    x = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed + 1))
    cls = model(x).argmax(1)
    w = model.linear.weight.detach()[cls].view(n, 3, size, size)
    return model, x, cls, w * x  # gradient x input: exact per-value contribution to the logit


def test_linear_deletion_curve_equals_closed_form():
    model, x, cls, attr = linear_setup()
    n = x.shape[0]
    metric = Deletion(steps=0.1, substrate="mean", score="logit", abpc=False)
    res = metric(model, x, cls, attr)
    # closed form: logit after removing the top-k pixels (zero substrate) = f(x) - sum of their pooled contributions
    pooled = attr.sum(1).flatten(1).double()
    f_x = model(x).gather(1, cls.view(-1, 1)).squeeze(1).double()
    step = round(0.1 * 64)
    counts = [min(k * step, 64) for k in range(math.ceil(64 / step) + 1)]
    top = pooled.sort(1, descending=True).values.cumsum(1)
    expected = torch.stack([f_x - (top[:, c - 1] if c > 0 else 0) for c in counts], 1)
    assert res.curves.shape == (n, len(counts))
    torch.testing.assert_close(res.curves.double(), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(res.curve_x, torch.tensor(counts, dtype=torch.float32) / 64)
    assert res.curve_x[0] == 0 and res.curve_x[-1] == 1
    auc = torch.trapezoid(expected, torch.tensor(counts, dtype=torch.float64) / 64, dim=1)
    torch.testing.assert_close(res.scores.double(), auc, atol=1e-5, rtol=0)
    assert res.higher_is_better is False


@pytest.mark.parametrize("mode", ["deletion", "insertion"])
def test_true_beats_random_beats_inverted(mode):
    model, x, cls, attr = linear_setup(n=6, size=12)
    random_map = torch.randn(attr.shape, generator=torch.Generator().manual_seed(7))
    cls_metric = Deletion if mode == "deletion" else Insertion
    metric = cls_metric(steps=0.05, substrate="mean", score="logit", abpc=True)
    true, rand, inv = (metric(model, x, cls, a) for a in (attr, random_map, -attr))
    if mode == "deletion":
        assert bool((true.scores < rand.scores).all()) and bool((rand.scores < inv.scores).all())
    else:
        assert bool((true.scores > rand.scores).all()) and bool((rand.scores > inv.scores).all())
    assert bool((true.extras["abpc"] > 0).all()) and bool((inv.extras["abpc"] < 0).all())
    torch.testing.assert_close(true.extras["auc_morf"], true.scores)


def test_auc_comparable_across_step_counts():
    model, x, cls, attr = linear_setup(size=8)
    fine = Deletion(steps=1 / 64, substrate="mean", score="logit", abpc=False)(model, x, cls, attr).scores
    coarse = Deletion(steps=0.25, substrate="mean", score="logit", abpc=False)(model, x, cls, attr).scores
    scale = model(x).abs().max().item() + 1
    # same x-axis [0, 1]: the coarse trapezoid approximates the fine one (a step-width-1 AUC would differ 16x)
    assert (fine - coarse).abs().max().item() < 0.1 * scale


@pytest.fixture(scope="module")
def cnn_batch():
    torch.manual_seed(0)
    model = SmallCNN(width=8).eval()
    x = torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    cls = model(x).argmax(1)
    # quantised map: many exact ties, so tie-breaking is exercised
    attr = torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(4)).round()
    return model, x, cls, attr


@pytest.mark.parametrize("kwargs", [
    dict(substrate="mean"), dict(substrate="blur", granularity="patch", patch_size=3),
    dict(substrate="noise", order="lerf"), dict(substrate="road", steps=0.2),
    dict(substrate="zero", granularity="superpixel", n_segments=12, steps=0.1),
])
@pytest.mark.parametrize("mode", ["deletion", "insertion"])
def test_chunk_and_batch_invariance(cnn_batch, kwargs, mode):
    model, x, cls, attr = cnn_batch
    ctx = dict(mean=torch.tensor([0.5] * 3), std=torch.tensor([0.25] * 3))
    results = [AblationCurve(mode, chunk_size=c, seed=11, abpc=True, **kwargs)(model, x, cls, attr, **ctx) for c in (1, 7, None)]
    for r in results[1:]:
        torch.testing.assert_close(r.scores, results[0].scores, atol=1e-6, rtol=0)
        torch.testing.assert_close(r.curves, results[0].curves, atol=1e-6, rtol=0)
        torch.testing.assert_close(r.extras["abpc"], results[0].extras["abpc"], atol=1e-6, rtol=0)
    # batch composition: sub-batches with their indices give the same per-sample scores
    metric = AblationCurve(mode, seed=11, **kwargs)
    whole = metric(model, x, cls, attr, **ctx).scores
    parts = torch.cat([metric(model, x[i:j], cls[i:j], attr[i:j], indices=torch.arange(i, j), **ctx).scores for i, j in ((0, 2), (2, 5))])
    torch.testing.assert_close(parts, whole, atol=1e-6, rtol=0)


def test_seed_determinism_and_tie_breaking(cnn_batch):
    model, x, cls, attr = cnn_batch
    flat = torch.zeros_like(attr)  # all ties: the order is the seeded random order
    a = Deletion(seed=1)(model, x, cls, flat).curves
    b = Deletion(seed=1)(model, x, cls, flat).curves
    c = Deletion(seed=2)(model, x, cls, flat).curves
    d = Deletion(seed=None)(model, x, cls, flat).curves
    e = Deletion(seed=None)(model, x, cls, flat).curves
    assert torch.equal(a, b) and torch.equal(d, e)
    assert not torch.allclose(a, c)


def test_endpoints_and_superpixel_axis(cnn_batch):
    model, x, cls, attr = cnn_batch
    res = Deletion(granularity="superpixel", n_segments=10, steps=0.3, abpc=False)(model, x, cls, attr)
    torch.testing.assert_close(res.curve_x, torch.tensor([0.0, 0.3, 0.6, 0.9, 1.0]))
    with torch.no_grad():
        p_clean = model(x).softmax(1).gather(1, cls.view(-1, 1)).squeeze(1)
        p_grey = model(torch.zeros_like(x)).softmax(1).gather(1, cls.view(-1, 1)).squeeze(1)
    torch.testing.assert_close(res.curves[:, 0], p_clean, atol=1e-6, rtol=0)
    torch.testing.assert_close(res.curves[:, -1], p_grey, atol=1e-6, rtol=0)
    ins = Insertion(substrate="mean", abpc=False)(model, x, cls, attr)
    torch.testing.assert_close(ins.curves[:, 0], p_grey, atol=1e-6, rtol=0)
    torch.testing.assert_close(ins.curves[:, -1], p_clean, atol=1e-6, rtol=0)
    assert ins.higher_is_better is True


@pytest.mark.parametrize("substrate, extra", [("mean", 1), ("zero", 1), ("blur", 0)])
@pytest.mark.parametrize("mode", ["deletion", "insertion"])
def test_forward_pass_count(cnn_batch, substrate, extra, mode):
    """One order costs N (clean) + N (K - 1) (inner steps) + the all-substrate end: N more images for a per-sample
    substrate, one image for ``mean``/``zero``, which are the same image for every sample."""
    model, x, cls, attr = cnn_batch
    seen = []
    handle = model.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    try:
        res = AblationCurve(mode, substrate=substrate, steps=0.25, abpc=False)(model, x, cls, attr)
    finally:
        handle.remove()
    n, k = x.shape[0], res.curves.shape[1] - 1
    assert sum(seen) == n + n * (k - 1) + (extra or n)


def test_targets_scores_and_nan(cnn_batch):
    model, x, cls, attr = cnn_batch
    labels = (cls + 1) % 4
    res = Deletion(target="label", score="correct", abpc=False)(model, x, cls, attr, labels=labels)
    assert torch.all(res.curves[:, 0] == 0)  # the clean prediction is never the shifted label
    bad = attr.clone()
    bad[1, 0, 0, 0] = math.nan
    res = Deletion(abpc=True)(model, x, cls, bad)
    assert math.isnan(res.scores[1]) and not torch.isnan(res.scores[[0, 2, 3, 4]]).any()
    with pytest.raises(ValueError, match="labels"):
        Deletion(target="label")(model, x, cls, attr)


def test_model_untouched(cnn_batch):
    model, x, cls, attr = cnn_batch
    model.train()
    model.features[0].eval()
    model.classifier.weight.requires_grad_(False)
    before = model_snapshot(model)
    Deletion(substrate="road", steps=0.5)(model, x, cls, attr)
    Insertion(granularity="superpixel", n_segments=8, steps=0.5)(model, x, cls, attr)
    assert_same_snapshot(before, model_snapshot(model))
    model.eval()
    model.classifier.weight.requires_grad_(True)


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=-1), r"deletion.steps must be in \(0, 1\]"), (dict(substrate="black"), "deletion.substrate must be one of"),
    (dict(granularity="segment"), "granularity"), (dict(chunk_size=0), "chunk_size"), (dict(fractions=[0.5, 0.2]), "fractions"),
    (dict(abpc="yes"), "abpc"), (dict(seed=1.5), "seed"),
])
def test_validation(kwargs, match):
    with pytest.raises(ValueError, match=match) as err:
        Deletion(**kwargs)
    assert "\n" not in str(err.value)


def test_road_imputation_matches_sparse_solve():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 12, 14, generator=gen, dtype=torch.float64)
    removed = torch.rand(2, 1, 12, 14, generator=gen) < 0.6
    removed[1, 0, 2:10, 3:12] = True  # a large hole
    out = linear_impute(x, removed, tol=1e-10)
    for i in range(2):
        ref = road_reference(x[i].numpy(), removed[i, 0].numpy())   # all channels share the mask
        np.testing.assert_allclose(out[i].numpy(), ref, atol=1e-8)
    assert torch.equal(out[~removed.expand_as(x)], x[~removed.expand_as(x)])
    # float32 at the default tolerance stays far below ROAD's noise (0.01 / 0.25 = 0.04)
    out32 = linear_impute(x.float(), removed)
    assert (out32.double() - out).abs().max() < 1e-3
    # noise lands only on removed pixels, scaled to 0.01 / std
    noise = torch.ones_like(x)
    noisy = noisy_linear_impute(x, removed, noise, std=[0.5, 0.25, 0.1], tol=1e-10)
    diff = noisy - out
    assert torch.all(diff[~removed.expand_as(x)] == 0)
    torch.testing.assert_close(diff[:, 1][removed[:, 0]], torch.full_like(diff[:, 1][removed[:, 0]], 0.04))
    # nothing kept: the mean (zero in normalised space)
    assert torch.equal(linear_impute(x, torch.ones_like(removed)), torch.zeros_like(x))


def test_a_curve_metric_refuses_another_mode_in_one_line():
    from metrics import Deletion, Insertion

    assert Deletion(mode="deletion").mode == "deletion"          # its own mode is accepted
    with pytest.raises(ValueError, match=r"^insertion.mode is always 'insertion'[^\n]*got 'deletion'"):
        Insertion(mode="deletion")


def test_row_blocks_tile_each_chunk_exactly():
    from metrics.ablation import row_blocks

    for m in (1, 3, 7):
        for lo in range(0, 30):
            for hi in range(lo + 1, 31):
                rows = []
                for s0, s1, j0, j1, r0, r1 in row_blocks(lo, hi, m):
                    assert r1 - r0 == (s1 - s0) * (j1 - j0) and 0 <= j0 < j1 <= m
                    rows += [s * m + j for s in range(s0, s1) for j in range(j0, j1)]
                assert rows == list(range(lo, hi))
