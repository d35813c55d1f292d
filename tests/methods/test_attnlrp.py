"""AttnLRP (Achtibat et al., ICML 2024) in our LRP (``attention=attnlrp``): conservation up to softmax's bias terms,
and the authors' reference implementation LXT (``lxt.explicit.functional``) on the same weights."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from methods.lrp import LRP

EPS = 1e-6


def tiny_vit(bias: bool = True, seed: int = 0) -> nn.Module:
    """A 2-block torchvision ViT on 8x8 images, every parameter random (torchvision zero-initialises the head, the
    class token and LayerNorm's bias); with ``bias=False`` every bias, the class token and the position embedding are zero."""
    torch.manual_seed(seed)
    model = torchvision.models.VisionTransformer(image_size=8, patch_size=4, num_layers=2, num_heads=2, hidden_dim=8,
                                                 mlp_dim=16, num_classes=3).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = p.shape[-1] if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
            if "ln" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            if not bias and (name.endswith("bias") or name in ("class_token", "encoder.pos_embedding")):
                p.zero_()
    return model


def inputs(n: int = 2, seed: int = 3):
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed)), torch.tensor([0, 2, 1][:n])


def test_attnlrp_conserves_up_to_what_softmax_bias_terms_absorb_on_a_bias_free_vit():
    """Bias-free ViT, epsilon = 0: every rule but softmax conserves, so Sum R = f(x) - Sum absorbed exactly, and the
    absorbed share is not small (softmax's Taylor bias b_j = s_j (1 - z_j + <z, s>)); CP-LRP conserves f(x) itself."""
    model = tiny_vit(bias=False)
    x, t = inputs()
    logit = model(x).gather(1, t.view(-1, 1)).squeeze(1)
    lrp = LRP(composite="epsilon", epsilon=0.0, stabilizer=0.0, attention="attnlrp")
    relevance, attention, absorbed = lrp.relevance_and_attention(model, x, t)
    total = relevance.sum(dim=(1, 2, 3))
    torch.testing.assert_close(total + sum(absorbed), logit, rtol=1e-4, atol=1e-5)
    assert len(attention) == 2 and attention[0].shape == (2, 2, 5, 5)
    assert ((total - logit).abs() > 1e-3 * logit.abs()).all()  # softmax is not conservative: the bias share is measurable
    cp = LRP(composite="epsilon", epsilon=0.0, stabilizer=0.0, attention="cp")(model, x, t)
    torch.testing.assert_close(cp.sum(dim=(1, 2, 3)), logit, rtol=1e-4, atol=1e-5)
    assert ((relevance - cp).norm() / cp.norm()) > 1e-2  # relevance through queries and keys changes the map


def test_attnlrp_reaches_queries_and_keys():
    """The relevance of each attention map, R^(A), less what softmax's bias terms absorb, is what goes on to q k^T
    (so to the queries and keys); it is not zero. cp has no such relevance (its attention weights are constants)."""
    model = tiny_vit()
    x, t = inputs()
    _, attention, absorbed = LRP(composite="epsilon", attention="attnlrp").relevance_and_attention(model, x, t)
    to_queries_and_keys = torch.stack([a.sum(dim=(1, 2, 3)) - b for a, b in zip(attention, absorbed)])
    assert torch.isfinite(to_queries_and_keys).all() and (to_queries_and_keys.abs() > 1e-4).all()
    with pytest.raises(ValueError, match="attention=attnlrp"):
        LRP(attention="cp").relevance_and_attention(model, x, t)
    with pytest.raises(ValueError, match="lrp.attention must be one of"):
        LRP(attention="softmax")


def lxt_relevance(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The same ViT written with LXT's explicit functional rules (epsilon for linear/conv/add, uniform-epsilon matmul,
    softmax linearised at x, LayerNorm with std detached, identity for GELU and the constant 1/sqrt(d))."""
    lf = pytest.importorskip("lxt.explicit.functional")
    from lxt.explicit.rules import epsilon_lrp, identity

    model = copy.deepcopy(model).requires_grad_(False)
    x = x.clone().requires_grad_(True)
    n, dim = x.shape[0], model.hidden_dim
    h = epsilon_lrp(model.conv_proj, EPS, x).reshape(n, dim, -1).permute(0, 2, 1)
    h = torch.cat([model.class_token.expand(n, -1, -1), h], dim=1)
    h = lf.add2(h, model.encoder.pos_embedding, epsilon=EPS)
    for block in model.encoder.layers:
        attn = block.self_attention
        heads, length = attn.num_heads, h.shape[1]
        y = lf.layer_norm(h, block.ln_1.weight, block.ln_1.bias, block.ln_1.eps)
        q, k, v = (u.reshape(n, length, heads, dim // heads).transpose(1, 2)
                   for u in lf.linear_epsilon(y, attn.in_proj_weight, attn.in_proj_bias, EPS).chunk(3, dim=-1))
        scores = lf.mul2(lf.matmul(q, k.transpose(-1, -2), epsilon=EPS), 1 / math.sqrt(dim // heads))
        out = lf.matmul(lf.softmax(scores, -1), v, epsilon=EPS).transpose(1, 2).reshape(n, length, dim)
        h = lf.add2(lf.linear_epsilon(out, attn.out_proj.weight, attn.out_proj.bias, EPS), h, epsilon=EPS)
        mlp = block.mlp
        y = lf.layer_norm(h, block.ln_2.weight, block.ln_2.bias, block.ln_2.eps)
        y = identity(F.gelu, lf.linear_epsilon(y, mlp[0].weight, mlp[0].bias, EPS))
        h = lf.add2(h, lf.linear_epsilon(y, mlp[3].weight, mlp[3].bias, EPS), epsilon=EPS)
    h = lf.layer_norm(h, model.encoder.ln.weight, model.encoder.ln.bias, model.encoder.ln.eps)
    logits = lf.linear_epsilon(h[:, 0], model.heads.head.weight, model.heads.head.bias, EPS)
    torch.testing.assert_close(logits, model(x), rtol=1e-5, atol=1e-6)
    onehot = torch.zeros_like(logits).scatter_(1, t.view(-1, 1), 1.0)
    (relevance,) = torch.autograd.grad(logits, x, onehot * logits.detach())
    return relevance


def _lxt_stabiliser(z, epsilon):
    out = z + epsilon  # LXT's convention: +epsilon whatever the sign of z (ours: + epsilon sign(z))
    return torch.where(out == 0, torch.ones_like(out), out)


@pytest.mark.parametrize("seed", [0, 1])
def test_attnlrp_matches_lxt(seed, monkeypatch):
    """Same weights, same epsilon (1e-6): with LXT's stabiliser convention the maps are the same to float64 round-off
    (measured 2e-16); with ours (epsilon keeps the sign of z) they differ by at most 1e-5 (measured 9e-6 on maps of
    max 0.03), all of it from the stabiliser; CP-LRP differs by 3e-2, so the comparison tells the rules apart."""
    model = tiny_vit(seed=seed)
    x, t = inputs(seed=seed + 3)
    reference = lxt_relevance(model, x, t)
    lrp = LRP(composite="epsilon", epsilon=EPS, stabilizer=EPS, attention="attnlrp")
    assert (lrp(model, x, t) - reference).abs().max() < 1e-5
    cp = LRP(composite="epsilon", epsilon=EPS, stabilizer=EPS, attention="cp")(model, x, t)
    assert (cp - reference).abs().max() > 1e-2 * reference.abs().max()
    import methods.lrp.attnlrp
    import methods.lrp.canonizers
    import methods.lrp.guard
    import methods.lrp.rules
    for module in (methods.lrp.rules, methods.lrp.canonizers, methods.lrp.guard, methods.lrp.attnlrp):
        monkeypatch.setattr(module, "stabilize", _lxt_stabiliser)
    model, x = model.double(), x.double()
    torch.testing.assert_close(lrp(model, x, t), lxt_relevance(model, x, t), rtol=1e-10, atol=1e-12)
