"""ROAD's noisy linear imputation (Rong, Leemann, Borisov, Kasneci & Kasneci, ICML 2022), batched in torch.

Definition: every removed pixel equals the weighted mean of its 8 neighbours (weight
1/6 for the 4 edge neighbours, 1/12 for the 4 diagonal ones; neighbours outside the
image are dropped and the weights renormalised); kept pixels are fixed boundary
values. All removed pixels of one channel of one image form one sparse linear
system; afterwards N(0, sigma^2) noise is added to the imputed pixels (sigma = 0.01
on the [0, 1] pixel scale, i.e. 0.01 / std_c in normalised space).

Solver: multiplying the row of pixel p by its raw neighbour weight d_p gives the
symmetric system  d_p u_p - sum_{q removed} w_pq u_q = sum_{q kept} w_pq x_q,  a
weighted graph Laplacian restricted to the removed pixels, positive definite
wherever a hole touches a kept pixel (an image with nothing kept has the solution
0, the dataset mean in normalised space, which the solver returns from its zero
start). It is solved for all images and channels of a batch at once by conjugate gradients
preconditioned with one multigrid V-cycle: piecewise-constant aggregation of 2x2 blocks of
holes down to one cell, Galerkin coarse operators P^T A P (3x3 stencils with per-cell
coefficients, summed from the finer ones), one damped-Jacobi sweep before and after each
coarse-grid correction (so the preconditioner is symmetric positive definite and the
iteration count barely grows with the image size). Every field is stored flat in a frame
two rows and one column wider than the image, so a 3x3 stencil is nine 1-D shifted
multiply-adds of contiguous arrays. Each system stops updating once its own residual is
below ``tol`` (max-norm, normalised units), and once half the images are done the others
go on alone, so a system's result does not depend on the others in its batch.
Reference: ``scripts/bench_road.py`` compares it with SciPy's sparse direct solve.
Imputation is linear, so imputing in normalised space equals imputing in pixel space.
"""
from __future__ import annotations

import torch

NOISE_STD = 0.01  # on the [0, 1] pixel scale, as ROAD
_EDGE, _DIAG = 1 / 6, 1 / 12  # neighbour weights


_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]   # stencil slot k = 3 (dy + 1) + (dx + 1)
_WEIGHTS = [_DIAG if dy and dx else (_EDGE if dy or dx else 0.0) for dy, dx in _OFFSETS]


class _Grid:
    """One level's layout: each (h, w) field is stored flat in an (h + 4) x (w + 2) frame, two zero rows above
    and below and one zero column either side, so that the 3x3 neighbours of every pixel are the 1-D shifts
    ``dy (w + 2) + dx`` of one contiguous array (fast, vectorised) and the frame's zeros are "outside the image"."""

    def __init__(self, h: int, w: int):
        self.h, self.w, self.stride = h, w, w + 2
        self.size = (h + 4) * (w + 2)
        self.span = slice(self.stride + 1, self.size - self.stride - 1)  # rows 1 .. h + 2 less two corners: every output
        self.shift = [dy * self.stride + dx for dy, dx in _OFFSETS]

    def frame(self, t: torch.Tensor) -> torch.Tensor:
        """The (.., h + 4, w + 2) view of flat fields ``t``."""
        return t.view(*t.shape[:-1], self.h + 4, self.w + 2)

    def interior(self, t: torch.Tensor, rows: int | None = None, cols: int | None = None) -> torch.Tensor:
        """The image pixels of flat fields ``t`` (the first ``rows`` x ``cols`` from the top left: the frame's
        zeros complete an odd size to an even one)."""
        return self.frame(t)[..., 2:2 + (rows or self.h), 1:1 + (cols or self.w)]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = x.new_zeros(*x.shape[:-2], self.size)
        self.interior(out).copy_(x)
        return out


class _Level:
    """One grid of the multigrid hierarchy: the 3x3 stencil of the operator restricted to the holes
    (``coef``, 9 flat fields per image; zero off the holes), the hole mask and the damped inverse diagonal."""

    def __init__(self, grid: _Grid, coef: torch.Tensor, hole: torch.Tensor, omega: float):
        self.grid, self.coef, self.hole = grid, coef, hole
        diag = coef[:, 4:5]
        self.inv_diag = torch.where(diag > 0, 1 / diag.clamp_min(1e-30), torch.zeros_like(diag))
        self.smooth = omega * self.inv_diag
        self.buffers: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def select(self, keep: torch.Tensor) -> _Level:
        """The same level for the images ``keep`` (indices) only."""
        lv = _Level.__new__(_Level)
        lv.grid, lv.buffers = self.grid, {}
        lv.coef, lv.hole, lv.inv_diag, lv.smooth = (t.index_select(0, keep) for t in
                                                    (self.coef, self.hole, self.inv_diag, self.smooth))
        return lv

    def work(self, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Three zeroed scratch tensors shaped like ``like``, allocated once (fresh ones cost page faults)."""
        key = tuple(like.shape)
        if key not in self.buffers:
            self.buffers[key] = (torch.zeros_like(like), torch.zeros_like(like), torch.zeros_like(like))
        return self.buffers[key]

    def apply(self, u: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out`` = A u (u zero off the holes and on the frame; ``out``'s first and last frame rows stay zero)."""
        g = self.grid
        o, c = out[..., g.span], self.coef[..., g.span]
        torch.mul(c[:, 4:5], u[..., g.span], out=o)
        for k, s in enumerate(g.shift):
            if k != 4:
                o.addcmul_(c[:, k:k + 1], u[..., g.span.start + s:g.span.stop + s])
        return out

    def coarse(self, omega: float) -> _Level:
        """The Galerkin operator P^T A P, P copying each coarse value to its 2x2 block: coarse cell I's
        coefficient towards I + k sums the fine coefficients from the pixels of block I towards those of block I + k."""
        g = self.grid
        cg = _Grid((g.h + 1) // 2, (g.w + 1) // 2)
        n = self.coef.shape[0]
        fine = g.interior(self.coef, 2 * cg.h, 2 * cg.w)
        coef = self.coef.new_zeros(n, 9, cg.size)
        inner = cg.interior(coef)
        for a in (0, 1):
            for b in (0, 1):
                block = fine[..., a::2, b::2]
                for k, (dy, dx) in enumerate(_OFFSETS):
                    kc = 3 * ((a + dy) // 2 + 1) + (b + dx) // 2 + 1
                    inner[:, kc] += block[:, k]
        hole = cg.embed((_restrict(g.interior(self.hole, 2 * cg.h, 2 * cg.w)) > 0).to(coef.dtype))
        return _Level(cg, coef, hole, omega)


class _Fine(_Level):
    """The image grid, whose off-diagonal weights are the same everywhere: for u zero off the holes,
    A u = hole (degree + 1/3) u - hole / 12 * B u, B the separable [1, 2, 1] x [1, 2, 1] kernel (the 1/6, 1/12
    kernel is (B - 4 delta) / 12): four shifted adds instead of eight multiply-adds."""

    def __init__(self, grid: _Grid, coef: torch.Tensor, hole: torch.Tensor, omega: float):
        super().__init__(grid, coef, hole, omega)
        self.centre, self.minus_edge = coef[:, 4:5] + hole / 3, hole / -12

    def select(self, keep: torch.Tensor) -> _Level:
        lv = super().select(keep)
        lv.__class__ = _Fine
        lv.centre, lv.minus_edge = self.centre.index_select(0, keep), self.minus_edge.index_select(0, keep)
        return lv

    def apply(self, u: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        g, st = self.grid, self.grid.stride
        tmp = self.work(u)[2]
        rows = tmp[..., st:g.size - st]                       # [1, 2, 1] down the columns
        torch.mul(u[..., st:g.size - st], 2, out=rows)
        rows.add_(u[..., 2 * st:]).add_(u[..., :g.size - 2 * st])
        o, a, b = out[..., g.span], g.span.start, g.span.stop
        torch.mul(tmp[..., a:b], 2, out=o)                    # [1, 2, 1] along the rows
        o.add_(tmp[..., a + 1:b + 1]).add_(tmp[..., a - 1:b - 1])
        o.mul_(self.minus_edge[..., a:b]).addcmul_(self.centre[..., a:b], u[..., a:b])
        return out


def _restrict(f: torch.Tensor) -> torch.Tensor:
    """Sums over 2x2 blocks of an even-sized (.., 2h, 2w) view: the transpose of piecewise-constant prolongation."""
    rows = f[..., 0::2, :] + f[..., 1::2, :]
    return rows[..., 0::2] + rows[..., 1::2]


def _v_cycle(levels: list[_Level], r: torch.Tensor, boost: float, i: int = 0) -> torch.Tensor:
    """One symmetric V-cycle from zero on the residual ``r``: a damped-Jacobi sweep, the (boosted)
    coarse-grid correction, the same sweep again. Returns a work buffer of level ``i``."""
    lv = levels[i]
    if i == len(levels) - 1:
        return lv.inv_diag * r
    x, t = lv.work(r)[:2]
    torch.mul(lv.smooth, r, out=x)
    torch.sub(r, lv.apply(x, t), out=t)
    g, cg = lv.grid, levels[i + 1].grid
    rows, cols = 2 * cg.h, 2 * cg.w
    rc = r.new_zeros(*r.shape[:-1], cg.size)
    cg.interior(rc).copy_(_restrict(g.interior(t, rows, cols)))
    xc = cg.interior(_v_cycle(levels, rc, boost, i + 1))
    n, c = x.shape[:2]
    fine = g.interior(x, rows, cols).view(n, c, cg.h, 2, cg.w, 2)
    hole = g.interior(lv.hole, rows, cols).view(-1, 1, cg.h, 2, cg.w, 2)
    fine.addcmul_(hole, xc[:, :, :, None, :, None], value=boost)
    torch.sub(r, lv.apply(x, t), out=t)
    return x.addcmul_(lv.smooth, t)


def linear_impute(images: torch.Tensor, removed: torch.Tensor, tol: float = 1e-6, max_iter: int = 500,
                  omega: float = 0.7, boost: float = 1.8) -> torch.Tensor:
    """Impute the ``removed`` pixels (N, 1|C, H, W bool) of ``images`` (N, C, H, W) without noise.

    ``tol``: each system stops once the max-norm of its residual is below it; ``max_iter``: at most
    this many conjugate-gradient steps; ``omega``: the Jacobi damping of the smoother, in (0, 1];
    ``boost``: the scale of the coarse-grid correction (unsmoothed aggregation undershoots; 1.8 cut
    the iterations on large holes at 224 px from 29 to 16, and added a few on scattered ones)."""
    n, c, h, w = images.shape
    dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    x = images.to(dtype)
    if removed.shape[1] != 1:                     # one mask per channel: every channel its own image
        x, removed = x.reshape(n * c, 1, h, w), removed.reshape(n * c, 1, h, w)
    grid = _Grid(h, w)
    hole = grid.embed(removed.to(dtype)[:, 0]).unsqueeze(1)                 # (n, 1, size)
    inside = grid.embed(torch.ones(1, h, w, device=x.device, dtype=dtype)).unsqueeze(1)
    span, shifted = grid.span, lambda t, s: t[..., grid.span.start + s:grid.span.stop + s]  # noqa: E731
    coef = hole.new_zeros(hole.shape[0], 9, grid.size)
    for k, s in enumerate(grid.shift):
        if k != 4:
            coef[:, k:k + 1, span] = shifted(hole, s) * (-_WEIGHTS[k])
            coef[:, 4:5, span] += shifted(inside, s) * _WEIGHTS[k]
    coef *= hole
    levels: list[_Level] = [_Fine(grid, coef, hole, omega)]
    while (levels[-1].grid.h, levels[-1].grid.w) != (1, 1):
        levels.append(levels[-1].coarse(omega))
    kept = grid.embed(x) * (1 - hole)
    r = torch.zeros_like(kept)
    for k, s in enumerate(grid.shift):
        if k != 4:
            r[..., span].add_(shifted(kept, s), alpha=_WEIGHTS[k])
    r *= hole                                     # b: the kept neighbours' pull on each removed pixel
    u, ap, prod = torch.zeros_like(r), torch.zeros_like(r), torch.empty_like(r)
    solution, images_left = torch.zeros_like(r), torch.arange(len(r), device=r.device)
    z = _v_cycle(levels, r, boost)
    p = z.clone()
    rz = torch.mul(r, z, out=prod).sum(-1, keepdim=True)
    active = r.abs().amax(-1, keepdim=True) > tol
    for _ in range(max_iter):
        running = active.any(1).flatten()
        if not bool(running.any()):
            break
        if len(running) >= 4 and 2 * int(running.sum()) <= len(running):
            # half the images are done: go on with the others only (each system's arithmetic is unchanged)
            solution.index_copy_(0, images_left, u)
            keep = running.nonzero().flatten()
            images_left = images_left.index_select(0, keep)
            u, r, p, rz, active = (t.index_select(0, keep) for t in (u, r, p, rz, active))
            ap, prod = torch.zeros_like(r), torch.empty_like(r)
            levels = [lv.select(keep) for lv in levels]
        levels[0].apply(p, ap)
        pap = torch.mul(p, ap, out=prod).sum(-1, keepdim=True)
        alpha = torch.where(active & (pap > 0), rz / pap.clamp_min(1e-30), 0)   # 0 freezes a finished system
        u.addcmul_(alpha, p)
        r.addcmul_(alpha, ap, value=-1)
        z = _v_cycle(levels, r, boost)
        rz_new = torch.mul(r, z, out=prod).sum(-1, keepdim=True)
        beta = torch.where(active, rz_new / rz.clamp_min(1e-30), 0)
        p.mul_(beta).add_(z)
        rz = torch.where(active, rz_new, rz)
        active &= torch.mul(r, r, out=prod).amax(-1, keepdim=True) > tol * tol
    solution.index_copy_(0, images_left, u)
    out = torch.where(removed, grid.interior(solution), x)
    return out.reshape(n, c, h, w).to(images.dtype)


def noisy_linear_impute(images: torch.Tensor, removed: torch.Tensor, noise: torch.Tensor | None, std=None,
                        noise_std: float = NOISE_STD, tol: float = 1e-5, max_iter: int = 2000) -> torch.Tensor:
    """ROAD's imputation: :func:`linear_impute`, then ``noise`` (standard normal, shaped like ``images``)
    scaled to ``noise_std`` on the pixel scale (``noise_std / std_c`` in normalised space) on the removed pixels."""
    out = linear_impute(images, removed, tol=tol, max_iter=max_iter)
    if noise is None or noise_std == 0:
        return out
    c = images.shape[1]
    scale = torch.ones(c) if std is None else torch.as_tensor(std, dtype=torch.float32).reshape(-1)
    scale = (noise_std / scale).to(images.device, images.dtype).view(1, c, 1, 1)
    return torch.where(removed.expand_as(out), out + noise.to(out.dtype) * scale, out)
