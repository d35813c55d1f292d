"""Torchvision's ImageNet architectures, built for any number of classes and input channels.

ResNet (He et al., CVPR 2016) and VGG (Simonyan & Zisserman, ICLR 2015), as
implemented in ``torchvision.models``; the module tree is torchvision's own, so a
state dict published by torchvision (``weights: DEFAULT``) or saved from torchvision
loads unchanged. With ``in_channels`` other than 3 the first convolution is
replaced by one with that many input channels (trained here; published weights
need RGB input).

``weights: DEFAULT`` reads torchvision's published weights from the local torch hub
cache, ``torch.hub.get_dir()/checkpoints/<file name of the weights URL>``, exactly
where ``torchvision`` itself would store them; nothing is downloaded unless the model
config sets ``download: true``.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

ARCHITECTURES = ("resnet18", "resnet50", "vgg11", "vgg16_bn")
TARGET = f"{__name__}.torchvision_network"


def torchvision_network(architecture: str, in_channels: int = 3, num_classes: int = 1000, image_size: int | None = None) -> nn.Module:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"model.network.architecture must be one of {', '.join(ARCHITECTURES)}; got {architecture!r}")
    if architecture.startswith("vgg") and image_size is not None and image_size < 32:
        raise ValueError(f"model.network: {architecture} needs images of at least 32 pixels (five 2x2 max-pools); the dataset's are {image_size}")
    import torchvision  # imported here: a run that uses no torchvision model does not pay for it

    model = torchvision.models.get_model(architecture, weights=None, num_classes=num_classes)
    if in_channels != 3:
        if architecture.startswith("resnet"):
            old = model.conv1
            model.conv1 = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
        else:
            old = model.features[0]
            model.features[0] = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding)
    return model


def published_weights(architecture: str):
    """Torchvision's DEFAULT weights enum member of ``architecture`` (offline: a Python object, no file access)."""
    import torchvision

    return torchvision.models.get_model_weights(architecture).DEFAULT


def published_file(architecture: str) -> Path:
    """Where torchvision keeps (or would download) the DEFAULT weights of ``architecture``."""
    name = os.path.basename(urlparse(published_weights(architecture).url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def load_published(architecture: str, download: bool = False) -> dict[str, torch.Tensor]:
    """The DEFAULT state dict, from the local hub cache (or downloaded into it when ``download``)."""
    path = published_file(architecture)
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    if not download:
        raise FileNotFoundError(f"no published weights for {architecture} at {path}")
    return published_weights(architecture).get_state_dict(progress=False)
