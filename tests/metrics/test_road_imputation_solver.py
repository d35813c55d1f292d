"""ROAD's linear imputation solver (multigrid-preconditioned CG) against a sparse direct solve of the definition."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import metrics.road_imputation as road_imputation
from metrics.road import ROAD
from metrics.road_imputation import linear_impute
from tests.toy_models import LinearModel


def reference(img: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The definition, row by row: each removed pixel minus the renormalised weighted mean of its in-image
    neighbours (1/6 edge, 1/12 diagonal) is zero; kept pixels are fixed. One SciPy sparse solve per channel."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spl

    h, w = removed.shape
    coords = np.argwhere(removed)
    out = img.copy()
    if len(coords) == 0:
        return out
    index = -np.ones((h, w), int)
    index[removed] = np.arange(len(coords))
    a = sp.lil_matrix((len(coords), len(coords)))
    b = np.zeros((len(coords), img.shape[0]))
    for t, (i, j) in enumerate(coords):
        nbrs = [(i + di, j + dj, 1 / 6 if di == 0 or dj == 0 else 1 / 12) for di in (-1, 0, 1) for dj in (-1, 0, 1)
                if (di or dj) and 0 <= i + di < h and 0 <= j + dj < w]
        total = sum(wt for *_, wt in nbrs)
        a[t, t] = 1
        for ii, jj, wt in nbrs:
            if removed[ii, jj]:
                a[t, index[ii, jj]] -= wt / total
            else:
                b[t] += wt / total * img[:, ii, jj]
    sol = spl.spsolve(a.tocsc(), b).reshape(len(coords), -1)
    out[:, removed] = sol.T
    return out


def masks(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    frac = torch.tensor([0.1, 0.5, 0.9, 0.7])[torch.arange(n) % 4].view(n, 1, 1, 1)
    out = torch.rand(n, 1, h, w, generator=gen) < frac
    out[0, 0, :, :3] = True          # a hole along the left border, both corners included
    out[-1, 0, 1:-1, 2:w - 1] = True  # a large hole touching the top and bottom border rows' neighbours
    return out


@pytest.mark.parametrize("h,w", [(9, 13), (16, 16)])
def test_equals_sparse_direct_solve_on_random_masks(h, w):
    x = torch.randn(4, 3, h, w, generator=torch.Generator().manual_seed(h), dtype=torch.float64)
    removed = masks(4, h, w, seed=w)
    out64 = linear_impute(x, removed, tol=1e-11)
    out32 = linear_impute(x.float(), removed)          # the default tolerance, in float32 as ROAD runs it
    for i in range(4):
        ref = reference(x[i].numpy(), removed[i, 0].numpy())
        np.testing.assert_allclose(out64[i].numpy(), ref, atol=1e-8)
        assert np.abs(out32[i].double().numpy() - ref).max() < 1e-4
    kept = ~removed.expand_as(x)
    assert torch.equal(out64[kept], x[kept])


def test_everything_and_nothing_removed_and_one_batch_equals_each_alone():
    x = torch.randn(4, 3, 12, 10, generator=torch.Generator().manual_seed(3))
    removed = masks(4, 12, 10, seed=4)
    removed[1] = True    # nothing kept: the mean, zero in normalised space
    removed[2] = False   # nothing removed: the image itself
    out = linear_impute(x, removed)
    assert torch.equal(out[1], torch.zeros_like(x[1]))
    assert torch.equal(out[2], x[2])
    for i in range(4):   # per-system stopping: a system's result does not depend on its batch
        torch.testing.assert_close(linear_impute(x[i:i + 1], removed[i:i + 1]), out[i:i + 1], rtol=0, atol=1e-6)


def test_per_channel_masks_and_tiny_images():
    x = torch.randn(2, 3, 7, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    removed = torch.rand(2, 3, 7, 5, generator=torch.Generator().manual_seed(6)) < 0.6
    out = linear_impute(x, removed, tol=1e-11)
    for i in range(2):
        for c in range(3):
            ref = reference(x[i, c:c + 1].numpy(), removed[i, c].numpy())
            np.testing.assert_allclose(out[i, c:c + 1].numpy(), ref, atol=1e-8)
    for shape in ((1, 1), (1, 6), (5, 1), (2, 3)):
        x = torch.randn(1, 2, *shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
        removed = torch.zeros(1, 1, *shape, dtype=torch.bool)
        removed.view(-1)[0] = True
        ref = reference(x[0].numpy(), removed[0, 0].numpy())
        np.testing.assert_allclose(linear_impute(x, removed, tol=1e-11)[0].numpy(), ref, atol=1e-8)


def test_road_scores_equal_those_with_the_direct_solve(monkeypatch):
    model = LinearModel(size=8, bias=True, seed=0).eval()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(8))
    labels = model(x).argmax(1)
    attr = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(9))
    metric = ROAD(score="softmax", seed=0)
    ours = metric(model, x, labels, attr, labels=labels)

    def direct(images, removed, **_):
        rem = removed.expand(-1, images.shape[1], -1, -1)
        out = [reference(images[i].double().numpy(), rem[i, 0].numpy()) for i in range(len(images))]
        return torch.tensor(np.stack(out), dtype=images.dtype)
    monkeypatch.setattr(road_imputation, "linear_impute", direct)
    theirs = metric(model, x, labels, attr, labels=labels)
    torch.testing.assert_close(ours.scores, theirs.scores, rtol=0, atol=1e-4)
    torch.testing.assert_close(ours.curves, theirs.curves, rtol=0, atol=1e-4)


def test_error_estimate_stops_within_the_bound_on_large_holes():
    """Large connected holes (the ill-conditioned case; the last image keeps only its top row) on a 40 px image
    (grids 40, 20, 10, then 5x5 solved densely), float32 at the default tolerance: every imputation within
    1e-4 of the direct solve (measured: at most 9e-6); the 10 % mask stops early and the others go on alone."""
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(4, 3, 40, 40, generator=gen)
    blob = torch.nn.functional.avg_pool2d(torch.randn(4, 1, 50, 50, generator=gen), 11, stride=1)
    rank = blob.flatten(1).argsort(1, descending=True).argsort(1).view(4, 1, 40, 40)
    removed = rank < torch.tensor([0.1, 0.9, 0.97, 0.5]).view(4, 1, 1, 1) * 1600
    removed[3, 0, 1:, :] = True                      # kept: only the top row
    stats: dict = {}
    out = linear_impute(x, removed, stats=stats)
    for i in range(4):
        ref = reference(x[i].double().numpy(), removed[i, 0].numpy())
        assert np.abs(out[i].double().numpy() - ref).max() < 1e-4
    assert stats["cycles"] < 4 * (stats["steps"] + 1)          # not every image ran as long as the slowest
