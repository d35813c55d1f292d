"""Attention-based explanations of vision transformers: raw attention, attention rollout, transformer attribution.

For a ViT whose blocks use ``nn.MultiheadAttention`` self-attention (torchvision's
``VisionTransformer``, the harness's ``small_vit``), A_l (N, heads, L, L) is the
softmax attention of block l over L = 1 + h*w tokens, the class token first; every map
is the class token's row over the patch tokens, A[:, 0, 1:], laid out on the h x w patch
grid (h/w as the input's aspect ratio) and upsampled to the input (``upsample``,
bilinear by default), shape (N, 1, H, W).

- ``RawAttention``: the last block's attention, heads fused by ``head_fusion``
  (mean, max or min).
- ``AttentionRollout`` (Abnar & Zuidema, ACL 2020): with the residual connection as
  identity, Â_l = norm_rows(0.5 fuse(A_l) + 0.5 I), and the rollout
  R = Â_L ... Â_2 Â_1; the map is R[0, 1:].
- ``TransformerAttribution``: attention weighted by the gradient, rolled out over the blocks,
  R = I, R <- R + Ā_l R for l = 1..L; the map is R[0, 1:]. ``variant`` says what the gradient weighs:
  ``gradient`` (Chefer, Gur & Wolf, "Generic attention-model explainability", ICCV 2021, Eq. 5-6):
  Ā_l = mean_heads (dy_c/dA_l ⊙ A_l)^+; ``lrp`` (Chefer, Gur & Wolf, "Transformer interpretability
  beyond attention visualization", CVPR 2021, Eq. 13-14): Ā_l = mean_heads (dy_c/dA_l ⊙ R^(A_l))^+ with
  R^(A_l) the LRP relevance of the attention map, here from our LRP with AttnLRP's rules
  (``methods.lrp``, ``composite=epsilon``, ``attention=attnlrp``; Achtibat et al. 2024; the paper used its
  own LRP variant), started from R = e_c at the output as in the paper. One forward and backward pass for the
  gradient, and one for the relevance.

The attention weights are recomputed from the block's own input and parameters
(q, k, v = in-projection of the input, A = softmax(q k^T / sqrt(d_head))) by a forward hook
that returns out_proj(A v) in place of the module's output, checked against it (relative
error < 1e-4), so the rest of the forward pass, and the gradient, flow through A.
Self-attention without masks, bias_k/bias_v or zero attention only; anything else is
refused in one line.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from methods._attention import self_attention
from methods._autograd import check_batch
from methods.lrp import LRP
from methods.model_state import frozen
from methods.validation import check_choice

FUSIONS = ("mean", "max", "min")
UPSAMPLING = ("bilinear", "bicubic", "nearest")
VARIANTS = ("gradient", "lrp")


def _fuse(attention: torch.Tensor, how: str) -> torch.Tensor:
    return {"mean": lambda a: a.mean(1), "max": lambda a: a.amax(1), "min": lambda a: a.amin(1)}[how](attention)


@contextlib.contextmanager
def recorded_attention(model: nn.Module, owner: str) -> Iterator[list[torch.Tensor]]:
    """The softmax attention (N, heads, L, L) of every ``nn.MultiheadAttention`` call, in order, inside the graph."""
    blocks = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)]
    if not blocks:
        raise ValueError(f"{owner} needs a transformer with nn.MultiheadAttention self-attention (torchvision ViT, small_vit); "
                         "the model has none (use gradcam or a gradient method)")
    maps: list[torch.Tensor] = []

    def hook(name, module, args, kwargs, output):
        attention, out = self_attention(name, module, args, kwargs, output, owner)
        maps.append(attention)
        return (out, *output[1:])

    handles = [m.register_forward_hook(lambda m, a, k, o, name=name: hook(name, m, a, k, o), with_kwargs=True) for name, m in blocks]
    try:
        yield maps
    finally:
        for h in handles:
            h.remove()


class _AttentionMap:
    """Base: records every block's attention in one forward pass (and one backward pass where ``needs_gradient``),
    turns it into an (N, L, L) token relevance with ``relevance``, and lays the class token's row out on the grid.

    Args:
        upsample (str, optional): Interpolation of the patch-grid map to the input size: ``bilinear``,
            ``bicubic`` (both align_corners=False) or ``nearest``. Default: ``bilinear``.
    """

    name = "attention"
    needs_gradient = False

    def __init__(self, upsample: str = "bilinear") -> None:
        self.upsample = check_choice(self.name, "upsample", upsample, UPSAMPLING)

    def weights(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attention: list[torch.Tensor]) -> list[torch.Tensor]:
        """What ``relevance`` gets as its first argument: the attention maps themselves (N, heads, L, L) per block."""
        return attention

    def relevance(self, attention: list[torch.Tensor], gradients: list[torch.Tensor] | None) -> torch.Tensor:
        raise NotImplementedError

    def token_map(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The map on the patch grid, (N, 1, h, w)."""
        targets = check_batch(inputs, targets)
        with frozen(model), torch.set_grad_enabled(self.needs_gradient), recorded_attention(model, self.name) as maps:
            x = inputs.detach().requires_grad_(self.needs_gradient)
            logits = model(x)
            grads = None
            if self.needs_gradient:
                grads = torch.autograd.grad(logits.gather(1, targets.view(-1, 1)).sum(), maps)
            attention = [a.detach() for a in maps]
        with frozen(model):  # the recording hooks are gone: LRP (variant=lrp) hooks the attention itself
            tokens = self.relevance(self.weights(model, inputs, targets, attention), grads)[:, 0, 1:]
        n, patches = tokens.shape
        h = round(math.sqrt(patches * inputs.shape[-2] / inputs.shape[-1]))
        if h < 1 or patches % h:
            raise ValueError(f"{self.name}: cannot lay {patches} patch tokens out on a grid with the input's aspect ratio")
        return tokens.reshape(n, 1, h, patches // h)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one forward pass (and one backward pass)."""
        return 1

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        maps = self.token_map(model, inputs, targets)
        kwargs = {} if self.upsample == "nearest" else {"align_corners": False}
        return F.interpolate(maps, size=inputs.shape[-2:], mode=self.upsample, **kwargs)


class RawAttention(_AttentionMap):
    """The last block's attention from the class token to the patches, heads fused.

    Args:
        head_fusion (str, optional): How the heads are fused: ``mean``, ``max`` or ``min``. Default: ``mean``.
        upsample (str, optional): see :class:`methods.attention._AttentionMap`. Default: ``bilinear``.
    """

    name = "raw_attention"

    def __init__(self, head_fusion: str = "mean", upsample: str = "bilinear") -> None:
        super().__init__(upsample)
        self.head_fusion = check_choice(self.name, "head_fusion", head_fusion, FUSIONS)

    def relevance(self, attention, gradients):
        return _fuse(attention[-1], self.head_fusion)


class AttentionRollout(_AttentionMap):
    """Attention rollout (Abnar & Zuidema 2020): the product of the residual-augmented, row-normalised attentions.

    Args:
        head_fusion (str, optional): How the heads are fused before the rollout: ``mean`` (the paper), ``max`` or ``min``.
            Default: ``mean``.
        upsample (str, optional): see :class:`methods.attention._AttentionMap`. Default: ``bilinear``.
    """

    name = "attention_rollout"

    def __init__(self, head_fusion: str = "mean", upsample: str = "bilinear") -> None:
        super().__init__(upsample)
        self.head_fusion = check_choice(self.name, "head_fusion", head_fusion, FUSIONS)

    def relevance(self, attention, gradients):
        eye = torch.eye(attention[0].shape[-1], dtype=attention[0].dtype, device=attention[0].device)
        rollout = eye.expand_as(attention[0][:, 0]).clone()
        for a in attention:
            a = 0.5 * _fuse(a, self.head_fusion) + 0.5 * eye
            rollout = (a / a.sum(dim=-1, keepdim=True)) @ rollout
        return rollout


class TransformerAttribution(_AttentionMap):
    """Gradient-weighted attention relevance (Chefer, Gur & Wolf 2021): R <- R + mean_h (grad ⊙ W)^+ R over the blocks,
    W the attention map A (``gradient``) or its LRP relevance R^(A) (``lrp``).

    Args:
        variant (str, optional): What the gradient of the attention weighs: ``gradient`` (the attention itself; ICCV 2021)
            or ``lrp`` (the attention's relevance from AttnLRP; CVPR 2021). Default: ``gradient``.
        upsample (str, optional): see :class:`methods.attention._AttentionMap`. Default: ``bilinear``.
    """

    name = "transformer_attribution"
    needs_gradient = True

    def __init__(self, variant: str = "gradient", upsample: str = "bilinear") -> None:
        super().__init__(upsample)
        self.variant = check_choice(self.name, "variant", variant, VARIANTS)

    def weights(self, model, inputs, targets, attention):
        if self.variant == "gradient":
            return attention
        _, relevance, _ = LRP(composite="epsilon", attention="attnlrp").relevance_and_attention(model, inputs, targets, unit=True)
        return relevance

    def relevance(self, attention, gradients):
        eye = torch.eye(attention[0].shape[-1], dtype=attention[0].dtype, device=attention[0].device)
        relevance = eye.expand_as(attention[0][:, 0]).clone()
        for a, g in zip(attention, gradients):
            relevance = relevance + (g * a).clamp(min=0).mean(1) @ relevance
        return relevance

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one pass, two with ``variant=lrp``."""
        return 1 if self.variant == "gradient" else 2
