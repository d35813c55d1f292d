"""Torchvision's ImageNet architectures, built for any number of classes and input channels.

ResNet (He et al., CVPR 2016) and VGG (Simonyan & Zisserman, ICLR 2015), as
implemented in ``torchvision.models``; the module tree is torchvision's own, so a
state dict published by torchvision (``weights: DEFAULT``) or saved from torchvision
loads unchanged. With ``in_channels`` other than 3 the first convolution is
replaced by one with that many input channels (trained here; published weights
need RGB input).

Published weights (``weights: DEFAULT``) are read by :mod:`harness.models.weights`.
"""
from __future__ import annotations

from torch import nn

ARCHITECTURES = ("resnet18", "resnet50", "vgg11", "vgg16_bn")


def torchvision_network(architecture: str, in_channels: int = 3, num_classes: int = 1000, image_size: int | None = None) -> nn.Module:
    """A torchvision ImageNet architecture (ResNet or VGG) for any number of classes and input channels.

    The module tree is torchvision's own, so its published state dicts (``model.weights:
    DEFAULT``, loaded by :mod:`harness.models.weights`) and checkpoints saved from
    torchvision load unchanged. With ``in_channels`` other than 3 the first convolution
    takes that many channels. The weights are torchvision's random initialisation.

    Args:
        architecture (str): One of resnet18, resnet50, vgg11, vgg16_bn (``ARCHITECTURES``).
            Required: each ``conf/model`` YAML names its own (e.g. resnet18 in ``resnet18.yaml``).
        in_channels (int, optional): Channels of the input images; filled in by the harness from
            the dataset. Default: 3.
        num_classes (int, optional): Outputs of the head; filled in by the harness from the dataset.
            Default: 1000.
        image_size (int or None, optional): Side of the input images in pixels, only checked: a
            VGG needs at least 32 (five 2x2 max-pools); None skips the check. Filled in by the
            harness from the dataset. Default: None.

    Returns:
        nn.Module: the torchvision network.
    """
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
