"""Plain self-attention of ``nn.MultiheadAttention``, recomputed from the module's parameters (shared by the attention
maps of :mod:`methods.attention` and LRP's attention rules in :mod:`methods.lrp`).

For a batch-first self-attention call on tokens x (N, L, D) with H heads of width d = D / H:
q, k, v = the in-projection of x split in three and into heads, A = softmax(q k^T / sqrt(d)) (N, H, L, L), and the
output out_proj(A v) with the heads merged back. Masks, bias_k/bias_v, zero attention, separate q/k/v projections and
cross attention (q, k, v not the same tensor) are refused in one line.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def self_attention(name: str, module: nn.MultiheadAttention, args: tuple, kwargs: dict, output, owner: str):
    """(softmax attention (N, heads, L, L), the module's output recomputed from it) for one call of a
    ``nn.MultiheadAttention`` (a forward hook's ``args``/``kwargs``/``output``); one line if it is not plain batch-first
    self-attention without masks or its output cannot be reproduced (relative error >= 1e-4)."""
    query, key, value = (list(args) + [kwargs.get(k) for k in ("query", "key", "value")][len(args):])[:3]
    masks = [kwargs.get(k) for k in ("attn_mask", "key_padding_mask")] + list(args[3:4]) + list(args[5:6])
    if not (query is key is value) or not module.batch_first or not module._qkv_same_embed_dim or module.bias_k is not None \
            or module.add_zero_attn or any(m is not None for m in masks if not isinstance(m, bool)) or query.dim() != 3:
        raise ValueError(f"{owner}: {name} is not plain batch-first self-attention without masks (q = k = v); "
                         "only that is supported")
    n, length, dim = query.shape
    heads = module.num_heads
    q, k, v = F.linear(query, module.in_proj_weight, module.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(n, length, heads, dim // heads).transpose(1, 2) for t in (q, k, v))
    attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dim // heads), dim=-1)
    out = F.linear((attention @ v).transpose(1, 2).reshape(n, length, dim), module.out_proj.weight, module.out_proj.bias)
    reference = output[0]
    error = ((out - reference).norm() / reference.norm().clamp(min=1e-12)).item()
    if not error < 1e-4:
        raise ValueError(f"{owner}: could not reproduce the attention of {name} (relative error {error:.2g})")
    return attention, out


def values_through(module: nn.MultiheadAttention, attention: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """The module's output with the attention weights given (held constant): out_proj(A @ v(query)), linear in query."""
    n, length, dim = query.shape
    heads = module.num_heads
    v = F.linear(query, module.in_proj_weight[2 * dim:], None if module.in_proj_bias is None else module.in_proj_bias[2 * dim:])
    v = v.reshape(n, length, heads, dim // heads).transpose(1, 2)
    return F.linear((attention @ v).transpose(1, 2).reshape(n, length, dim), module.out_proj.weight, module.out_proj.bias)
