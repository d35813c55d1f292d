"""Chunked evaluation of many generated images, with an automatically tuned chunk size.

:func:`evaluate_in_chunks` calls ``read(lo, hi, model(build(lo, hi)))`` over ``[0, total)``:
``build`` makes the images ``lo..hi-1`` on the fly (so memory is bounded by the chunk,
not by all images of all steps) and ``read`` takes the model's outputs. With a fixed
``chunk_size`` it walks in steps of that size. With ``chunk_size=None`` the size is tuned
for throughput: starting at 64 images, each candidate is timed over about the same amount of work
(256 images, at least two chunks: timing the fastest of a few chunks instead favours small
chunks on a busy machine, whose short runs slip between interruptions) and doubled until one
runs at under 75 % of the best rate so far (a load spike on a shared machine, or a flat stretch of the
throughput curve, common on CPUs, must not end the search early), up to :func:`memory_cap` and
the number of images of the call (a larger chunk could never be timed: the search settles);
the pick is the largest candidate within 5 % of the best rate (near-ties go to fewer, larger
chunks: less per-chunk work outside the model; a wider margin cost the small CNN 20 %, whose
rate falls with the chunk size). The result is
remembered per ``key`` (model class and size, image shape, device, ...) in :data:`TUNED`, the
rates behind it in :data:`RATES`; a search a short call leaves unfinished (timed chunks
included) goes on in the next call. Results do not depend on the chunk size up to the
model's own float non-associativity.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

AUTO_CHUNK_BYTES = 512 * 2**20   # memory cap of the automatic chunk size (input + activation headroom)
TUNED: dict[tuple, int] = {}     # automatic chunk sizes found so far, per key
RATES: dict[tuple, dict[int, float]] = {}  # the images/s each candidate reached in the search behind TUNED[key]
_TUNING: dict[tuple, tuple] = {}  # unfinished searches: (size, {size: rate}, (images, seconds, chunks) timed at size)
START = 64      # first candidate chunk size (smaller chunks are rarely faster; timing them costs most)
TRIES = 2       # timed chunks per candidate, at least ...
SPAN = 256      # ... and at least this many images: every candidate is timed over about the same work
SLOWER = 0.75   # the search stops at a candidate below this fraction of the best rate (clearly slower, not noise)
NOISE = 0.95    # candidates within this fraction of the best rate count as equally fast (the larger wins)


def memory_cap(inputs: torch.Tensor) -> int:
    """Most images per chunk: 16x the input's bytes per image (activation headroom) within the memory budget
    (512 MiB on the CPU; half the free memory on CUDA)."""
    budget = AUTO_CHUNK_BYTES
    if inputs.device.type == "cuda":
        budget = max(budget, torch.cuda.mem_get_info(inputs.device)[0] // 2)
    return max(1, budget // (inputs[0].numel() * inputs.element_size() * 16))


def _settle(key: tuple, rates: dict[int, float]) -> int:
    """End the search for ``key``: the largest size within noise of the best rate (fewer, larger chunks)."""
    best = max(rates.values())
    size = max(s for s, r in rates.items() if r >= best * NOISE)
    TUNED[key], RATES[key] = size, rates
    _TUNING.pop(key, None)
    return size


def evaluate_in_chunks(model: nn.Module, total: int, build: Callable[[int, int], torch.Tensor],
                       read: Callable[[int, int, torch.Tensor], None], key: tuple, cap: int, chunk_size: int | None,
                       device: torch.device) -> None:
    """``read(lo, hi, model(build(lo, hi)))`` over [0, total) in chunks of ``chunk_size`` (None: tuned, see above)."""
    if chunk_size is not None:
        for lo in range(0, total, chunk_size):
            hi = min(lo + chunk_size, total)
            read(lo, hi, model(build(lo, hi)))
        return
    size = TUNED.get(key)
    lo, trying = 0, size is None
    if trying:  # a search that a short call left unfinished goes on where it stopped
        size, rates, (images, seconds, chunks) = _TUNING.get(key, (min(START, cap), {}, (0, 0.0, 0)))
        size = min(size, cap)
        if size > total and rates:   # a candidate this call cannot fill once: settle on the sizes timed so far
            size, trying = _settle(key, rates), False
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    while lo < total:
        hi = min(lo + size, total)
        if trying and hi - lo == size:
            sync()
            t0 = time.perf_counter()
            read(lo, hi, model(build(lo, hi)))
            sync()
            images, seconds, chunks = images + size, seconds + time.perf_counter() - t0, chunks + 1
            # each candidate is timed over the same amount of work (SPAN images, at least TRIES chunks), so that
            # a busy machine's interruptions hit small and large chunks alike
            if chunks >= TRIES and images >= SPAN:
                rate = images / max(seconds, 1e-9)
                rates[size] = rate
                best = max(rates.values())
                # keep doubling until clearly slower than the best so far (a load spike, or a flat stretch of the
                # throughput curve, common on CPUs, must not end the search early)
                if rate >= best * SLOWER and size * 2 <= min(cap, total):
                    size *= 2
                else:
                    size, trying = _settle(key, rates), False
                images, seconds, chunks = 0, 0.0, 0
        else:
            read(lo, hi, model(build(lo, hi)))
        lo = hi
    if trying:  # the candidate's timed chunks so far count in the next call
        _TUNING[key] = (size, rates, (images, seconds, chunks))
