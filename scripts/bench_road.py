"""ROAD's noisy linear imputation: our batched multigrid solver against per-image SciPy (not a test; prints one report).

    python scripts/bench_road.py                      # 64 px (8 images) and 224 px (2 images), one thread
    python scripts/bench_road.py --sizes 224 --n 8 --repeats 3 --floor

The workload is what ``metrics.road.ROAD`` solves: for every image, the masks of its 7
default percentages (10 ... 90 % of the pixels removed, most-relevant first) from a
channel-pooled attribution map, 3 channels each. Two kinds of map: ``noise`` (a
gradient-like map: scattered holes) and ``smooth`` (a CAM-like map, i.e. random noise
box-blurred over 1/4 of the image: large connected holes, the ill-conditioned case).

Side by side, in one run, on the same systems:

1. SciPy, two per-image references of the symmetric system of :mod:`metrics.road_imputation`
   (d_p u_p - sum_{q removed} w_pq u_q = sum_{q kept} w_pq x_q, built with vectorised NumPy,
   one factorisation per image with the 3 channels as 3 right-hand sides):
   ``spsolve`` (SuperLU, its default COLAMD ordering; as ROAD's reference code) and
   ``splu`` with the minimum-degree ordering of A + A^T in symmetric mode (the better
   ordering for this symmetric 2-D stencil at 64 px). Speed-ups are over the faster of the two;
2. ours: ``metrics.road_imputation.linear_impute`` at ROAD's settings (its defaults), all
   images and percentages in one call as ROAD batches them;
3. with ``--previous``: the solver of two rounds ago (Jacobi-preconditioned CG, a 3x3
   convolution), 10-100x slower, timed in the first round only.

Prints the wall-clock times (best of ``--repeats`` rounds, the solvers interleaved round by
round: the machine may be shared), the speed-up over the faster SciPy, the max |difference|
from SciPy's imputation (normalised units; target <= 1e-4), the load average, and our
multigrid cycles per image. ``--floor`` adds what bounds our time: the same number of cycles
of the image-grid stencil alone (three applications per cycle: one in CG, two in the cycle's
smoothing), i.e. the time of the minimal stencil sweeps, with no coarse grids, no vector updates.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import metrics.road_imputation as road_imputation  # noqa: E402
from metrics.road import DEFAULT_PERCENTAGES  # noqa: E402
from metrics.road_imputation import linear_impute  # noqa: E402

EDGE, DIAG = 1 / 6, 1 / 12
OFFSETS = [(dy, dx, DIAG if dy and dx else EDGE) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def scipy_impute(image: np.ndarray, removed: np.ndarray, ordering: str | None = None) -> np.ndarray:
    """One image (C, H, W), its removed pixels (H, W): the symmetric system, one factorisation with C right-hand
    sides: ``spsolve`` (``ordering`` None) or ``splu`` with that column ordering, in symmetric mode."""
    c, h, w = image.shape
    holes = np.flatnonzero(removed.ravel())
    out = image.copy()
    if len(holes) == 0:
        return out
    index = np.full(h * w, -1)
    index[holes] = np.arange(len(holes))
    ys, xs = np.divmod(holes, w)
    rows, cols, vals = [np.arange(len(holes))], [], []
    degree, rhs = np.zeros(len(holes)), np.zeros((len(holes), c))
    flat = image.reshape(c, -1)
    for dy, dx, wt in OFFSETS:
        yy, xx = ys + dy, xs + dx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        degree += wt * inside
        q = np.where(inside, yy.clip(0, h - 1) * w + xx.clip(0, w - 1), 0)
        j = np.where(inside, index[q], -1)
        hole = j >= 0
        rows.append(np.flatnonzero(hole))
        cols.append(j[hole])
        vals.append(np.full(hole.sum(), -wt))
        kept = inside & ~hole
        rhs[kept] += wt * flat[:, q[kept]].T
    cols.insert(0, np.arange(len(holes)))
    vals.insert(0, degree)
    a = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(holes),) * 2)
    if ordering is None:
        sol = spl.spsolve(a, rhs).reshape(len(holes), c)
    else:
        sol = spl.splu(a, permc_spec=ordering, options={"SymmetricMode": True}).solve(rhs)
    out.reshape(c, -1)[:, holes] = sol.T
    return out


def previous_cg(images: torch.Tensor, removed: torch.Tensor, tol: float = 1e-5, max_iter: int = 2000) -> torch.Tensor:
    """The previous solver (kept here for the comparison): Jacobi-preconditioned CG, the operator one 3x3 convolution."""
    n, c, h, w = images.shape
    x = images.reshape(n * c, 1, h, w)
    hole = removed.expand(n, c, h, w).reshape(n * c, 1, h, w).to(x.dtype)
    k = torch.tensor([[DIAG, EDGE, DIAG], [EDGE, 0.0, EDGE], [DIAG, EDGE, DIAG]], dtype=x.dtype).view(1, 1, 3, 3)
    conv = lambda t: F.conv2d(t, k, padding=1)  # noqa: E731
    degree = conv(torch.ones(1, 1, h, w, dtype=x.dtype))
    b = hole * conv((1 - hole) * x)
    u, r = torch.zeros_like(x), b.clone()
    z = r / degree
    p = z.clone()
    rz = (r * z).sum((1, 2, 3), keepdim=True)
    active = r.abs().amax((1, 2, 3), keepdim=True) > tol
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        ap = hole * (degree * p - conv(hole * p))
        pap = (p * ap).sum((1, 2, 3), keepdim=True)
        alpha = torch.where(active & (pap > 0), rz / pap.clamp_min(1e-30), torch.zeros_like(pap))
        u, r = u + alpha * p, r - alpha * ap
        z = r / degree
        rz_new = (r * z).sum((1, 2, 3), keepdim=True)
        beta = torch.where(active, rz_new / rz.clamp_min(1e-30), torch.zeros_like(rz))
        p = torch.where(active, z + beta * p, p)
        rz = torch.where(active, rz_new, rz)
        active = active & (r.abs().amax((1, 2, 3), keepdim=True) > tol)
    return torch.where(hole.bool(), u, x).reshape(n, c, h, w)


def road_masks(n: int, size: int, kind: str, seed: int) -> torch.Tensor:
    """(n * 7, 1, size, size): for each image, the pixels removed at ROAD's default percentages (MoRF)."""
    gen = torch.Generator().manual_seed(seed)
    attr = torch.randn(n, 1, size, size, generator=gen)
    if kind == "smooth":
        r = size // 8
        attr = F.avg_pool2d(F.pad(attr, (r, r, r, r), mode="reflect"), 2 * r + 1, stride=1)
    rank = attr.flatten(1).argsort(1, descending=True).argsort(1)               # 0 = most relevant
    counts = torch.tensor([round(p / 100 * size * size) for p in DEFAULT_PERCENTAGES])
    return (rank[:, None, :] < counts[None, :, None]).reshape(n * len(counts), 1, size, size)


def stencil_floor(images: torch.Tensor, removed: torch.Tensor, cycles: int, repeats: int) -> float:
    """Seconds of ``3 * cycles / len(images)`` applications of the image-grid stencil to the whole batch."""
    n, c, h, w = images.shape
    grid = road_imputation._Grid(h, w)
    hole = grid.embed(removed.float()[:, 0]).unsqueeze(1)
    coef = torch.zeros(n, 9, grid.size)
    coef[:, 4:5] = hole
    fine = road_imputation._Fine(grid, coef, hole, 1.0)
    u, out = grid.embed(images) * hole, torch.zeros(n, c, grid.size)
    sweeps = round(3 * cycles / n)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(sweeps):
            fine.apply(u, out)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    p.add_argument("--n", type=int, nargs="+", default=[8, 2], help="images per size (7 systems x 3 channels each)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (SciPy's SuperLU uses one)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--previous", action="store_true", help="add the Jacobi CG of two rounds ago (slow on smooth maps)")
    p.add_argument("--floor", action="store_true", help="add the time of our stencil sweeps alone")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    k = len(DEFAULT_PERCENTAGES)
    print(f"torch {torch.__version__}, threads={args.threads}; ROAD percentages {list(DEFAULT_PERCENTAGES)}, 3 channels, "
          f"best of {args.repeats}; load average {os.getloadavg()[0]:.1f}")
    for size, n in zip(args.sizes, args.n * len(args.sizes) if len(args.n) == 1 else args.n):
        for kind in ("noise", "smooth"):
            removed = road_masks(n, size, kind, seed=size)
            images = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1)).repeat_interleave(k, 0)
            x64, rem = images.double().numpy(), removed[:, 0].numpy()
            stats: dict = {}
            solvers = {"spsolve": lambda: np.stack([scipy_impute(x64[i], rem[i]) for i in range(len(rem))]),
                       "splu-mmd": lambda: np.stack([scipy_impute(x64[i], rem[i], "MMD_AT_PLUS_A") for i in range(len(rem))]),
                       "ours": lambda: linear_impute(images, removed, stats=stats).numpy()}
            if args.previous:
                solvers["previous CG"] = lambda: previous_cg(images, removed).numpy()
            best, outs = dict.fromkeys(solvers, math.inf), {}
            load = os.getloadavg()[0]
            for round_ in range(args.repeats):
                for name, fn in solvers.items():
                    if name == "previous CG" and round_:
                        continue  # 10-100x slower: timed once
                    t0 = time.perf_counter()
                    outs[name] = fn()
                    best[name] = min(best[name], time.perf_counter() - t0)
            ref = min(("spsolve", "splu-mmd"), key=best.get)
            line = (f"{size:3d} px {kind:6s} {n:2d} images x {k} masks (load {load:.1f}-{os.getloadavg()[0]:.1f}): "
                    f"spsolve {best['spsolve']:.3f} s, splu-mmd {best['splu-mmd']:.3f} s "
                    f"(differ by {np.abs(outs['spsolve'] - outs['splu-mmd']).max():.0e})")
            for name in solvers:
                if name not in ("spsolve", "splu-mmd"):
                    err = np.abs(outs[name] - outs[ref]).max()
                    line += f" | {name} {best[name]:.3f} s = {best[ref] / best[name]:4.1f}x faster, max |diff| {err:.1e}"
            line += f" | {stats['cycles'] / len(images):.1f} cycles per mask"
            if args.floor:
                floor = stencil_floor(images, removed, stats["cycles"], args.repeats)
                line += f" | stencil floor {floor:.3f} s = {best[ref] / floor:.1f}x"
            print(line, flush=True)


if __name__ == "__main__":
    main()
