"""A small vision transformer: torchvision's ``VisionTransformer`` in a configuration sized for small images.

ViT (Dosovitskiy et al., ICLR 2021): the image is cut into ``patch_size`` patches,
linearly embedded, prefixed with a class token and passed through ``num_layers``
pre-norm encoder blocks of ``num_heads``-head self-attention; the class token's
final state feeds the linear head. Torchvision's class is used unchanged (modules
``conv_proj``, ``encoder.layers.encoder_layer_i.self_attention``, ``heads.head``),
so attention-based explanations (attention rollout, Abnar & Zuidema 2020) find the
layers where they expect them. Inputs with other than 3 channels get a patch
embedding with that many input channels. There are no published weights for these
sizes: it is trained here.
"""
from __future__ import annotations

from torch import nn
from torchvision.models import VisionTransformer


def small_vit(
    in_channels: int = 3, num_classes: int = 4, image_size: int = 32, patch_size: int = 4,
    num_layers: int = 4, num_heads: int = 4, hidden_dim: int = 64, mlp_dim: int = 128, dropout: float = 0.0,
) -> nn.Module:
    """A small vision transformer: torchvision's ``VisionTransformer`` sized for small images, trained here.

    Square patches are embedded to ``hidden_dim`` (``conv_proj``; with ``in_channels`` other
    than 3 it takes that many channels), prefixed with a class token and passed through
    ``num_layers`` pre-norm encoder blocks; the class token's final state feeds the linear
    head ``heads.head``. There are no published weights at these sizes.

    Args:
        in_channels (int, optional): Channels of the input images; filled in by the harness from
            the dataset. Default: 3.
        num_classes (int, optional): Outputs of the head; filled in by the harness from the dataset.
            Default: 4.
        image_size (int, optional): Side of the square input images in pixels; filled in by
            the harness from the dataset. Default: 32.
        patch_size (int, optional): Side of the square patches in pixels, a positive divisor of
            ``image_size``. Default: 4.
        num_layers (int, optional): Encoder blocks, at least 1. Default: 4.
        num_heads (int, optional): Self-attention heads per block, at least 1, dividing
            ``hidden_dim``. Default: 4.
        hidden_dim (int, optional): Width of the token embeddings, a multiple of ``num_heads``.
            Default: 64.
        mlp_dim (int, optional): Hidden width of each block's MLP, at least 1. Default: 128.
        dropout (float, optional): Dropout probability, passed to torchvision as ``dropout``
            (embeddings, attention and MLP outputs; the attention weights get none).
            Default: 0.0.

    Returns:
        nn.Module: a ``torchvision.models.VisionTransformer``.
    """
    if patch_size < 1 or image_size % patch_size:
        raise ValueError(f"model.network.patch_size must divide the image size {image_size}; got {patch_size}")
    if num_heads < 1 or hidden_dim % num_heads:
        raise ValueError(f"model.network.hidden_dim must be a multiple of num_heads; got hidden_dim={hidden_dim}, num_heads={num_heads}")
    if num_layers < 1 or mlp_dim < 1:
        raise ValueError(f"model.network.num_layers and mlp_dim must be positive; got {num_layers} and {mlp_dim}")
    model = VisionTransformer(image_size=image_size, patch_size=patch_size, num_layers=num_layers, num_heads=num_heads,
                              hidden_dim=hidden_dim, mlp_dim=mlp_dim, dropout=dropout, num_classes=num_classes)
    if in_channels != 3:
        model.conv_proj = nn.Conv2d(in_channels, hidden_dim, kernel_size=patch_size, stride=patch_size)
    return model
