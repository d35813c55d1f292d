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
_MIX = 0x45D9F3B
_MAX_COUNTER = 2**31  # counters are int32 internally


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixing function on int64 tensors holding values in [0, 2^32)."""
    x = ((x >> 16) ^ x) * _MIX & _M32
    x = ((x >> 16) ^ x) * _MIX & _M32
    return (x >> 16) ^ x


def _hash32_int32(x: torch.Tensor) -> torch.Tensor:
    """:func:`_hash32` on int32 tensors holding the same 32 bits (multiplication wraps; shifts made logical), in place.

    The same bits as the int64 version, at a quarter of the memory traffic: the per-element hot path.
    """
    x.bitwise_xor_((x >> 16) & 0xFFFF)
    x.mul_(_MIX)
    x.bitwise_xor_((x >> 16) & 0xFFFF)
    x.mul_(_MIX)
    x.bitwise_xor_((x >> 16) & 0xFFFF)
    return x


def _as_int32(x: torch.Tensor) -> torch.Tensor:
    """int64 values in [0, 2^32) as int32 with the same 32 bits."""
    return (((x & _M32) ^ 2**31) - 2**31).to(torch.int32)


def _keys32(seed: int | None, stream: int, ids: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    """int32 tensor (len(ids), K) holding the 32 bits of :func:`keys_at`."""
    ids = torch.as_tensor(ids).long().reshape(-1)
    base = _hash32(torch.tensor((0 if seed is None else int(seed)) & _M32, dtype=torch.long, device=ids.device))
    base = _hash32(base ^ (stream & _M32))
    per_sample = _as_int32(_hash32(base ^ (ids.view(-1, 1) & _M32)))               # (N, 1)
    counters = counters.to(ids.device)
    counters = counters.view(1, -1) if counters.dim() == 1 else counters           # (1 or N, K)
    if counters.numel() and (int(counters.min()) < 0 or int(counters.max()) >= _MAX_COUNTER):
        raise ValueError(f"random counters must be in [0, 2^31); got [{int(counters.min())}, {int(counters.max())}]")
    return _hash32_int32(_hash32_int32(counters.to(torch.int32) ^ per_sample))


def keys_at(seed: int | None, stream: int, ids: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    """int64 values in [0, 2^32) of shape (len(ids), K) for ``counters`` (K,) or (len(ids), K) in [0, 2^31); row i from (seed, stream, ids[i])."""
    return _keys32(seed, stream, ids, counters).long() & _M32


def uniform_at(seed: int | None, stream: int, ids: torch.Tensor, counters: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """U(0, 1) values (never 0 or 1) at ``counters``, as :func:`keys_at`."""
    k = _keys32(seed, stream, ids, counters).double()
    return ((torch.where(k < 0, k + 2.0**32, k) + 0.5) / 2.0**32).to(dtype)  # the unsigned value of the 32 bits


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
