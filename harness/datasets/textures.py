"""Background textures: natural photographs of texture shipped with scikit-image, and procedural patterns.

A texture is a grey-level pattern ``t`` in [0, 1]; a dataset colours it with its
environment's two colours (``low + (high - low) * t``). Natural textures are the
512x512 grass, gravel and brick images inside the scikit-image package
(``skimage.data.grass()`` etc., no download), contrast-stretched to [0, 1] between
their 2nd and 98th percentiles and resampled so that an image of ``size`` pixels
shows a quarter of the texture's width; each sample is a seeded random crop.
Procedural textures are binarised periodic patterns with a random period (4-7
repeats per image) and phase.

Everything is batched and drawn from the given generator, so the same seed gives the same bytes.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

NATURAL = ("grass", "gravel", "brick")
PROCEDURAL = ("stripes", "waves", "checker", "dots", "diagonals", "grid")
TEXTURES = NATURAL + PROCEDURAL


def check_names(names, where: str, needed: int) -> tuple[str, ...]:
    names = tuple(str(n) for n in names)
    unknown = [n for n in names if n not in TEXTURES]
    if unknown:
        raise ValueError(f"{where} has unknown texture {unknown[0]!r}; allowed: {', '.join(TEXTURES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{where} lists a texture twice; got {list(names)}")
    if len(names) < needed:
        raise ValueError(f"{where} needs at least {needed} textures (one per environment); got {len(names)}")
    return names


@functools.lru_cache(maxsize=16)
def natural(name: str, size: int) -> torch.Tensor:
    """The scikit-image texture ``name`` as (4 * size, 4 * size) grey levels in [0, 1]."""
    import skimage.data

    pixels = torch.from_numpy(getattr(skimage.data, name)()).float()
    low, high = torch.quantile(pixels.flatten()[::7], torch.tensor([0.02, 0.98]))
    pixels = ((pixels - low) / (high - low)).clamp(0, 1)
    side = min(4 * size, pixels.shape[-1])
    return F.interpolate(pixels[None, None], size=(side, side), mode="bilinear", antialias=True, align_corners=False)[0, 0].clamp(0, 1)


def draw(names: tuple[str, ...], which: torch.Tensor, size: int, gen: torch.Generator, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Grey-level textures (N, 1, S, S) in [0, 1]: sample i shows ``names[which[i]]``.

    ``rows`` draws the random numbers of all N samples but the textures of those rows only (same bytes)."""
    n, s = len(which), size
    period = s / (4 + 3 * torch.rand(n, 1, 1, generator=gen))
    phase = torch.rand(n, 1, 1, generator=gen) * 2 * math.pi
    corner = torch.rand(n, 2, generator=gen)
    if rows is not None:
        which, period, phase, corner, n = which[rows], period[rows], phase[rows], corner[rows], len(rows)
    out = torch.empty(n, s, s)
    yy = torch.arange(s, dtype=torch.float32).view(1, -1, 1)
    xx = torch.arange(s, dtype=torch.float32).view(1, 1, -1)
    w = 2 * math.pi / period
    for k, name in enumerate(names):
        rows = (which == k).nonzero().flatten()
        if rows.numel() == 0:
            continue
        if name in NATURAL:
            tex = natural(name, s)
            room = tex.shape[-1] - s
            oy, ox = (corner[rows] * (room + 1)).long().clamp(max=room).unbind(1)
            ar = torch.arange(s)
            out[rows] = tex[(oy.view(-1, 1, 1) + ar.view(1, -1, 1)), (ox.view(-1, 1, 1) + ar.view(1, 1, -1))]
            continue
        wk, pk = w[rows], phase[rows]
        pattern = {
            "stripes": lambda: torch.sin(wk * yy + pk).expand(len(rows), s, s),
            "waves": lambda: torch.sin(wk * xx + 1.5 * torch.sin(wk * yy / 2) + pk),
            "checker": lambda: torch.sin(wk * xx + pk) * torch.sin(wk * yy + pk),
            "dots": lambda: torch.cos(wk * xx + pk) * torch.cos(wk * yy) - 0.5,
            "diagonals": lambda: torch.sin(wk * (xx + yy) / 1.4 + pk),
            "grid": lambda: torch.maximum(torch.cos(wk * xx + pk), torch.cos(wk * yy + pk)) - 0.5,
        }[name]()
        out[rows] = (pattern > 0).float()
    return out.unsqueeze(1)
