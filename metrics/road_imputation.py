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
holes down to a grid of at most 64 cells, solved exactly (a dense inverse per image), Galerkin
coarse operators P^T A P (3x3 stencils with per-cell coefficients, summed from the finer
ones), one Jacobi sweep before and after each coarse-grid correction (so the preconditioner
is symmetric positive definite and the number of cycles barely grows with the image size:
7-14 per mask at 64 and 224 px). Every field is stored flat in a frame two rows and one
column wider than the image, so a 3x3 stencil is 1-D shifted multiply-adds of contiguous arrays.

Stopping rule: each system stops once its error estimate, the max-norm of the preconditioned
residual z = M^-1 r, is below ``tol`` = 5e-6 (normalised units). M^-1 approximates A^-1, so z
approximates the error A^-1 r itself; the residual r does not: inside large holes the error
was 10x the residual (at 224 px a residual of 1e-5 left errors of 1e-4), and A^-1 grows with the
hole's squared diameter. Measured against SciPy's direct solve (``scripts/bench_road.py``,
tests/metrics/test_road_imputation_solver.py) the error stays below 5 tol (at most 2.3e-5 at
64 and 224 px); it is an estimate, not a proven bound. Once 1/8 of the images still iterated
are done, the others go on alone, so a system's result does not depend on the others in its batch.
Reference: ``scripts/bench_road.py`` compares it with SciPy's sparse direct solve.
Imputation is linear, so imputing in normalised space equals imputing in pixel space.
"""
from __future__ import annotations

import copy

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

    fields = ("coef", "hole", "inv_diag", "smooth")   # per image: what :meth:`select` keeps

    def __init__(self, grid: _Grid, coef: torch.Tensor, hole: torch.Tensor, omega: float):
        self.grid, self.coef, self.hole = grid, coef, hole
        diag = coef[:, 4:5]
        self.inv_diag = torch.where(diag > 0, 1 / diag.clamp_min(1e-30), torch.zeros_like(diag))
        self.smooth = omega * self.inv_diag
        self.buffers: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def select(self, keep: torch.Tensor) -> _Level:
        """The same level for the images ``keep`` (indices) only; it shares the scratch tensors."""
        lv = copy.copy(self)
        for name in self.fields:
            setattr(lv, name, getattr(self, name).index_select(0, keep))
        return lv

    def work(self, shape: tuple[int, ...], like: torch.Tensor, name: str = "cycle") -> tuple[torch.Tensor, ...]:
        """Four scratch tensors of ``shape`` (``name`` "cycle": the cycle's correction and residual, the image
        grid's row sums, the right-hand side restricted to here; "up": the prolongation's column copies).
        Allocated zero once for the whole batch (fresh ones cost page faults); fewer images use their first rows.
        Their frames stay zero: every write either covers the frame with zeros or stays inside it."""
        key = (name, *shape[1:])
        if key not in self.buffers or len(self.buffers[key][0]) < shape[0]:
            self.buffers[key] = tuple(like.new_zeros(shape) for _ in range(4 if name == "cycle" else 1))
        return tuple(b[:shape[0]] for b in self.buffers[key])

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
    kernel is (B - 4 delta) / 12): six passes instead of nine multiply-adds. Its ``coef`` is dropped once the
    coarse levels are built."""

    fields = ("hole", "inv_diag", "smooth", "centre", "minus_edge")

    def __init__(self, grid: _Grid, coef: torch.Tensor, hole: torch.Tensor, omega: float):
        super().__init__(grid, coef, hole, omega)
        self.centre, self.minus_edge = coef[:, 4:5] + hole / 3, hole / -12

    def apply(self, u: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        g, st = self.grid, self.grid.stride
        tmp = self.work(u.shape, u)[2]
        rows = tmp[..., st:g.size - st]                       # [1, 2, 1] down the columns
        torch.add(u[..., 2 * st:], u[..., :g.size - 2 * st], out=rows).add_(u[..., st:g.size - st], alpha=2)
        o, a, b = out[..., g.span], g.span.start, g.span.stop
        torch.add(tmp[..., a + 1:b + 1], tmp[..., a - 1:b - 1], out=o).add_(tmp[..., a:b], alpha=2)  # along the rows
        o.mul_(self.minus_edge[..., a:b]).addcmul_(self.centre[..., a:b], u[..., a:b])
        return out


class _Coarsest:
    """The coarsest grid (at most ``_DENSE`` cells), solved exactly: the inverse of its operator as a dense
    (cells x cells) matrix per image, one batched product per cycle. Cells off the holes get a unit diagonal,
    and a relative 1e-10 on the diagonal keeps the one singular case (nothing kept: no right-hand side) finite."""

    fields = ("inverse", "hole")

    def __init__(self, level: _Level):
        g = self.grid = level.grid
        self.hole = level.hole
        n, cells = level.coef.shape[0], g.h * g.w
        coef = g.interior(level.coef).double()                                 # (n, 9, h, w)
        dense = coef.new_zeros(n, cells, cells)
        ys, xs = torch.meshgrid(torch.arange(g.h), torch.arange(g.w), indexing="ij")
        for k, (dy, dx) in enumerate(_OFFSETS):
            inside = ((ys + dy >= 0) & (ys + dy < g.h) & (xs + dx >= 0) & (xs + dx < g.w)).flatten()
            row = torch.arange(cells)[inside]
            col = ((ys + dy) * g.w + xs + dx).flatten()[inside]
            dense[:, row.to(coef.device), col.to(coef.device)] = coef[:, k].flatten(1)[:, inside.to(coef.device)]
        diag = dense.diagonal(dim1=1, dim2=2)
        diag += (diag <= 0).to(diag.dtype) + 1e-10 * diag.amax(-1, keepdim=True).clamp_min(1)
        self.inverse = torch.cholesky_inverse(torch.linalg.cholesky(dense)).to(level.coef.dtype)  # symmetric
        self.buffers, self.operator = level.buffers, None

    work = _Level.work

    def select(self, keep: torch.Tensor) -> _Coarsest:
        lv = _Level.select(self, keep)
        if self.operator is not None:
            lv.operator = self.operator.select(keep)
        return lv

    def apply(self, u: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """A u, where the image is this small (``operator``: its own grid, then the only level)."""
        return self.operator.apply(u, out)

    def solve(self, r: torch.Tensor) -> torch.Tensor:
        g = self.grid
        x = self.work(r.shape, r)[0]
        n, c = r.shape[:2]
        g.interior(x).copy_(torch.bmm(g.interior(r).reshape(n, c, -1), self.inverse).view(n, c, g.h, g.w))
        return x


_DENSE = 64   # cells of the coarsest grid (dense inverse: 64^3 per image to build, 64^2 per cycle)


def _restrict(f: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Sums over 2x2 blocks of an even-sized (.., 2h, 2w) view: the transpose of piecewise-constant prolongation."""
    rows = f[..., 0::2, :] + f[..., 1::2, :]
    return torch.add(rows[..., 0::2], rows[..., 1::2], out=out)


def _cycle(levels: list, r: torch.Tensor, boost: float, gamma: int, i: int = 0) -> torch.Tensor:
    """One symmetric multigrid cycle from zero on the residual ``r``: a damped-Jacobi sweep, the (boosted)
    coarse-grid correction (``gamma`` times below the image grid: 1 a V-cycle, 2 a W-cycle), the same sweep
    again; the coarsest grid is solved exactly. Returns a work buffer of level ``i``."""
    lv = levels[i]
    if i == len(levels) - 1:
        return lv.solve(r)
    x, t = lv.work(r.shape, r)[:2]
    torch.mul(lv.smooth, r, out=x)
    g, nxt = lv.grid, levels[i + 1]
    cg = nxt.grid
    rows, cols = 2 * cg.h, 2 * cg.w
    rc = nxt.work((*r.shape[:-1], cg.size), r)[3]
    n, c = x.shape[:2]
    fine = g.interior(x, rows, cols).view(n, c, cg.h, 2, cols)
    hole = g.interior(lv.hole, rows, cols).view(-1, 1, cg.h, 2, cols)
    up = lv.work((n, c, cg.h, cols), r, "up")[0]
    for _ in range(gamma if i else 1):
        torch.sub(r, lv.apply(x, t), out=t)
        _restrict(g.interior(t, rows, cols), out=cg.interior(rc))
        xc = cg.interior(_cycle(levels, rc, boost, gamma, i + 1))
        up[..., 0::2].copy_(xc)                   # piecewise-constant prolongation: each coarse value to its
        up[..., 1::2].copy_(xc)                   # two columns, then to both rows (a 6-D broadcast is 4x slower)
        fine.addcmul_(hole, up[:, :, :, None], value=boost)
    torch.sub(r, lv.apply(x, t), out=t)
    return x.addcmul_(lv.smooth, t)


def _max_abs(t: torch.Tensor) -> torch.Tensor:
    """Max |t| over the last dimension (two reductions: a 1-D CPU pass each, faster than abs() or aminmax)."""
    return torch.maximum(t.amax(-1, keepdim=True), t.amin(-1, keepdim=True).neg_())


def linear_impute(images: torch.Tensor, removed: torch.Tensor, tol: float = 5e-6, max_iter: int = 500,
                  omega: float = 1.0, boost: float = 1.4, gamma: int = 1, compact: float = 0.125,
                  stats: dict | None = None) -> torch.Tensor:
    """Impute the ``removed`` pixels (N, 1|C, H, W bool) of ``images`` (N, C, H, W) without noise.

    ``tol``: each system stops once its error estimate, the max-norm of the preconditioned residual
    M^-1 r (normalised units), is below it; ``max_iter``: at most this many conjugate-gradient steps;
    ``omega``: the Jacobi damping of the smoother, in (0, 1]; ``boost``: the scale of the coarse-grid
    correction (unsmoothed aggregation undershoots); ``gamma``: coarse corrections per coarse level;
    ``compact``: once this fraction of the images still iterated is done, the others go on alone;
    ``stats``: a dict that receives ``cycles`` (multigrid cycles summed over the images, a mask's
    channels counting once) and ``steps`` (conjugate-gradient steps of the slowest image)."""
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
    fine = _Fine(grid, coef, hole, omega)
    levels: list = [fine]
    while levels[-1].grid.h * levels[-1].grid.w > _DENSE:
        levels.append(levels[-1].coarse(omega))
    levels[-1] = _Coarsest(levels[-1])
    if len(levels) == 1:                          # a small image: solved exactly, CG checks it in one step
        levels[0].operator = fine
    fine.coef = None                              # the image grid's operator is its centre and edge fields
    kept = grid.embed(x) * (1 - hole)
    r = torch.zeros_like(kept)
    for k, s in enumerate(grid.shift):
        if k != 4:
            r[..., span].add_(shifted(kept, s), alpha=_WEIGHTS[k])
    r *= hole                                     # b: the kept neighbours' pull on each removed pixel
    u, ap_all, prod_all = torch.zeros_like(r), torch.zeros_like(r), torch.empty_like(r)
    ap, prod = ap_all, prod_all
    solution, images_left = torch.zeros_like(r), torch.arange(len(r), device=r.device)
    z = _cycle(levels, r, boost, gamma)
    cycles, steps = len(r), 0
    p = z.clone()
    rz = torch.mul(r, z, out=prod).sum(-1, keepdim=True)
    active = _max_abs(z) > tol
    for _ in range(max_iter):
        running = active.any(1).flatten()
        left = int(running.sum())
        if not left:
            break
        if left < len(running) and len(running) - left >= compact * len(running):
            # enough images are done: go on with the others only (each system's arithmetic is unchanged)
            solution.index_copy_(0, images_left, u)
            keep = running.nonzero().flatten()
            images_left = images_left.index_select(0, keep)
            u, r, p, rz, active = (t.index_select(0, keep) for t in (u, r, p, rz, active))
            ap, prod = ap_all[:left], prod_all[:left]
            levels = [lv.select(keep) for lv in levels]
        levels[0].apply(p, ap)
        pap = torch.mul(p, ap, out=prod).sum(-1, keepdim=True)
        alpha = torch.where(active & (pap > 0), rz / pap.clamp_min(1e-30), 0)   # 0 freezes a finished system
        u.addcmul_(alpha, p)
        r.addcmul_(alpha, ap, value=-1)
        z = _cycle(levels, r, boost, gamma)
        cycles, steps = cycles + len(r), steps + 1
        rz_new = torch.mul(r, z, out=prod).sum(-1, keepdim=True)
        beta = torch.where(active, rz_new / rz.clamp_min(1e-30), 0)
        torch.addcmul(z, beta, p, out=p)
        rz = torch.where(active, rz_new, rz)
        active &= _max_abs(z) > tol
    solution.index_copy_(0, images_left, u)
    if stats is not None:
        stats.update(cycles=cycles, steps=steps)
    out = torch.where(removed, grid.interior(solution), x)
    return out.reshape(n, c, h, w).to(images.dtype)


def noisy_linear_impute(images: torch.Tensor, removed: torch.Tensor, noise: torch.Tensor | None, std=None,
                        noise_std: float = NOISE_STD, **solver) -> torch.Tensor:
    """ROAD's imputation: :func:`linear_impute`, then ``noise`` (standard normal, shaped like ``images``)
    scaled to ``noise_std`` on the pixel scale (``noise_std / std_c`` in normalised space) on the removed pixels."""
    out = linear_impute(images, removed, **solver)
    if noise is None or noise_std == 0:
        return out
    c = images.shape[1]
    scale = torch.ones(c) if std is None else torch.as_tensor(std, dtype=torch.float32).reshape(-1)
    scale = (noise_std / scale).to(images.device, images.dtype).view(1, c, 1, 1)
    return torch.where(removed.expand_as(out), out + noise.to(out.dtype) * scale, out)
