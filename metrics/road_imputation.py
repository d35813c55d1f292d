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
start). It is solved by Jacobi-preconditioned conjugate gradients for all images and
channels of a batch at once, the operator being one depthwise 3x3 convolution. Each
system stops updating once its own residual is below ``tol`` (max-norm, normalised
units), so a system's result does not depend on the others in its batch.
Imputation is linear, so imputing in normalised space equals imputing in pixel space.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

NOISE_STD = 0.01  # on the [0, 1] pixel scale, as ROAD


def _kernel(device, dtype) -> torch.Tensor:
    e, d = 1 / 6, 1 / 12
    return torch.tensor([[d, e, d], [e, 0.0, e], [d, e, d]], device=device, dtype=dtype).view(1, 1, 3, 3)


def linear_impute(images: torch.Tensor, removed: torch.Tensor, tol: float = 1e-5, max_iter: int = 2000) -> torch.Tensor:
    """Impute the ``removed`` pixels (N, 1|C, H, W bool) of ``images`` (N, C, H, W) without noise."""
    n, c, h, w = images.shape
    dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    x = images.to(dtype).reshape(n * c, 1, h, w)
    hole = removed.expand(n, c, h, w).reshape(n * c, 1, h, w).to(dtype)
    k = _kernel(x.device, dtype)
    conv = lambda t: F.conv2d(t, k, padding=1)  # noqa: E731
    degree = conv(torch.ones(1, 1, h, w, device=x.device, dtype=dtype))           # in-image raw weights
    b = hole * conv((1 - hole) * x)

    def apply(u: torch.Tensor) -> torch.Tensor:
        return hole * (degree * u - conv(hole * u))

    u = torch.zeros_like(x)
    r = b.clone()
    z = r / degree
    p = z.clone()
    rz = (r * z).sum((1, 2, 3), keepdim=True)
    active = r.abs().amax((1, 2, 3), keepdim=True) > tol
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        ap = apply(p)
        pap = (p * ap).sum((1, 2, 3), keepdim=True)
        alpha = torch.where(active & (pap > 0), rz / pap.clamp_min(1e-30), torch.zeros_like(pap))
        u = u + alpha * p
        r = r - alpha * ap
        z = r / degree
        rz_new = (r * z).sum((1, 2, 3), keepdim=True)
        beta = torch.where(active, rz_new / rz.clamp_min(1e-30), torch.zeros_like(rz))
        p = torch.where(active, z + beta * p, p)
        rz = torch.where(active, rz_new, rz)
        active = active & (r.abs().amax((1, 2, 3), keepdim=True) > tol)
    out = torch.where(hole.bool(), u, x)
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
