"""ROAD's noisy linear imputation: our batched multigrid solver against per-image SciPy (not a test; prints one report).

    python scripts/bench_road.py                      # 64 px (8 images) and 224 px (2 images), one thread
    python scripts/bench_road.py --sizes 224 --n 8 --repeats 3

The workload is what ``metrics.road.ROAD`` solves: for every image, the masks of its 7
default percentages (10 ... 90 % of the pixels removed, most-relevant first) from a
channel-pooled attribution map, 3 channels each. Two kinds of map: ``noise`` (a
gradient-like map: scattered holes) and ``smooth`` (a CAM-like map, i.e. random noise
box-blurred over 1/4 of the image: large connected holes, the ill-conditioned case).

Side by side, in one run, on the same systems:

1. SciPy: per image, the symmetric system of :mod:`metrics.road_imputation`
   (d_p u_p - sum_{q removed} w_pq u_q = sum_{q kept} w_pq x_q) built with vectorised
   NumPy and solved by ``scipy.sparse.linalg.spsolve`` with the 3 channels as 3
   right-hand sides (one factorisation per image, as ROAD's reference code);
2. ours: ``metrics.road_imputation.linear_impute`` (multigrid-preconditioned CG), all
   images and percentages in one call as ROAD batches them;
3. the previous solver (Jacobi-preconditioned CG with a 3x3 convolution), all in one call.

Prints the times, the speed-ups over SciPy and the max |difference| from SciPy's imputation
(normalised units; target <= 1e-4). Times are the best of ``--repeats`` rounds, the solvers
interleaved round by round (the machine may be shared); the previous CG, 10-100x slower, is
timed in the first round only.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metrics.road import DEFAULT_PERCENTAGES  # noqa: E402
from metrics.road_imputation import linear_impute  # noqa: E402

EDGE, DIAG = 1 / 6, 1 / 12
OFFSETS = [(dy, dx, DIAG if dy and dx else EDGE) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def scipy_impute(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """One image (C, H, W), its removed pixels (H, W): the symmetric system, one spsolve with C right-hand sides."""
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
    sol = spl.spsolve(a, rhs).reshape(len(holes), c)
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    p.add_argument("--n", type=int, nargs="+", default=[8, 2], help="images per size (7 systems x 3 channels each)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (SciPy's SuperLU uses one)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-previous", action="store_true", help="leave out the previous CG (slow on smooth maps at 224 px)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    k = len(DEFAULT_PERCENTAGES)
    print(f"torch {torch.__version__}, threads={args.threads}; ROAD percentages {list(DEFAULT_PERCENTAGES)}, 3 channels, "
          f"best of {args.repeats}")
    for size, n in zip(args.sizes, args.n * len(args.sizes) if len(args.n) == 1 else args.n):
        for kind in ("noise", "smooth"):
            removed = road_masks(n, size, kind, seed=size)
            images = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1)).repeat_interleave(k, 0)
            x64, rem = images.double().numpy(), removed[:, 0].numpy()
            solvers = {"scipy": lambda: np.stack([scipy_impute(x64[i], rem[i]) for i in range(len(rem))]),
                       "ours": lambda: linear_impute(images, removed).numpy()}
            if not args.skip_previous:
                solvers["previous CG"] = lambda: previous_cg(images, removed).numpy()
            best, outs = dict.fromkeys(solvers, math.inf), {}
            for round_ in range(args.repeats):
                for name, fn in solvers.items():
                    if name == "previous CG" and round_:
                        continue  # 10-100x slower: timed once
                    t0 = time.perf_counter()
                    outs[name] = fn()
                    best[name] = min(best[name], time.perf_counter() - t0)
            line = f"{size:3d} px {kind:6s} {n:3d} images x {k} masks: scipy {best['scipy']:7.3f} s"
            for name in solvers:
                if name != "scipy":
                    err = np.abs(outs[name] - outs["scipy"]).max()
                    line += f" | {name} {best[name]:7.3f} s = {best['scipy'] / best[name]:5.1f}x faster, max |diff| {err:.1e}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
