"""Counter-based per-sample random numbers: sample i's draws depend only on (seed, stream, its id).

The stochastic explainers (SmoothGrad, RISE, LIME, KernelSHAP, Expected Gradients, the ``random``
control, ``baseline=uniform``) and the metrics draw from here, so a map or a score does not depend on
the batch, chunk or shard a sample is processed in, nor on the device: a number is a hash of
(seed, stream, sample id, counter) (a 32-bit integer mixing function applied to int64 tensors, the
same arithmetic on every device), not the state of a generator that the other samples advance.

* :func:`keys_at` / :func:`uniform_at` / :func:`normal_at`: the values at given counters (B, K) for
  ids (B,), so a chunk of (sample, draw) pairs is made on demand without the others;
* :func:`random_keys` / :func:`uniform` / :func:`normal`: the first ``numel`` counters of each id,
  shaped (len(ids), *shape);
* ``stream`` separates independent uses (one constant per purpose), ``seed=None`` is 0.

The sample id is the caller's: the harness gives an evaluation sample's test-split index; an explainer
called without ids uses the positions 0..N-1 of its call (:func:`call_ids`).
"""
from __future__ import annotations

import math

import torch

_M32 = 0xFFFFFFFF


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixing function on int64 tensors holding values in [0, 2^32)."""
    x = ((x >> 16) ^ x) * 0x45D9F3B & _M32
    x = ((x >> 16) ^ x) * 0x45D9F3B & _M32
    return (x >> 16) ^ x


def keys_at(seed: int | None, stream: int, ids: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    """int64 values in [0, 2^32) of shape (len(ids), K) for ``counters`` (K,) or (len(ids), K); row i from (seed, stream, ids[i])."""
    ids = torch.as_tensor(ids).long().reshape(-1)
    base = _hash32(torch.tensor((0 if seed is None else int(seed)) & _M32, dtype=torch.long, device=ids.device))
    base = _hash32(base ^ (stream & _M32))
    per_sample = _hash32(base ^ (ids.view(-1, 1) & _M32))                          # (N, 1)
    counters = counters.to(ids.device).long()
    counters = counters.view(1, -1) if counters.dim() == 1 else counters          # (1 or N, K)
    return _hash32(_hash32(counters ^ per_sample) ^ (counters >> 32))


def uniform_at(seed: int | None, stream: int, ids: torch.Tensor, counters: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """U(0, 1) values (never 0 or 1) at ``counters``, as :func:`keys_at`."""
    return ((keys_at(seed, stream, ids, counters).double() + 0.5) / 2.0**32).to(dtype)


def normal_at(seed: int | None, stream: int, ids: torch.Tensor, counters: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """N(0, 1) values at ``counters`` (Box-Muller on two independent uniform streams)."""
    u1 = uniform_at(seed, 2 * stream + 1000, ids, counters, torch.float64)
    u2 = uniform_at(seed, 2 * stream + 1001, ids, counters, torch.float64)
    return (torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)).to(dtype)


def _first(ids: torch.Tensor, numel: int) -> torch.Tensor:
    return torch.arange(numel, device=torch.as_tensor(ids).device, dtype=torch.long)


def random_keys(seed: int | None, stream: int, ids: torch.Tensor, numel: int) -> torch.Tensor:
    """(len(ids), numel) int64 values in [0, 2^32); row i depends only on (seed, stream, ids[i]) (``uniform``'s raw keys)."""
    return keys_at(seed, stream, ids, _first(ids, numel))


def uniform(seed: int | None, stream: int, ids: torch.Tensor, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    """U(0, 1) values of shape (len(ids), *shape); row i depends only on (seed, stream, ids[i])."""
    return uniform_at(seed, stream, ids, _first(ids, math.prod(shape)), dtype).view(len(ids), *shape)


def normal(seed: int | None, stream: int, ids: torch.Tensor, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    """N(0, 1) values of shape (len(ids), *shape), batch-invariant as :func:`uniform`."""
    return normal_at(seed, stream, ids, _first(ids, math.prod(shape)), dtype).view(len(ids), *shape)


def call_ids(inputs: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
    """The sample ids of an explainer call on the inputs' device: ``ids`` (one per input), or 0..N-1 when None."""
    n = inputs.shape[0]
    if ids is None:
        return torch.arange(n, device=inputs.device)
    ids = torch.as_tensor(ids, device=inputs.device).long().reshape(-1)
    if ids.numel() != n:
        raise ValueError(f"explainer ids must hold one sample id per input; got {ids.numel()} for {n} inputs")
    return ids
