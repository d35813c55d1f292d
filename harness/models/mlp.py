"""A multi-layer perceptron on flattened pixels: the no-spatial-prior baseline.

Linear-ReLU layers of the given widths and a linear head (Rumelhart, Hinton &
Williams 1986). Piecewise linear, so gradient x input and Deep Taylor style rules
apply exactly; with no convolution it shows how much of a heat map's structure
comes from the architecture rather than the data (Adebayo et al. 2018).
"""
from __future__ import annotations

from torch import nn


class MLP(nn.Module):
    """A ReLU multi-layer perceptron on flattened pixels: the no-spatial-prior baseline.

    ``features`` flattens the image and applies Linear-ReLU layers of the ``hidden`` widths;
    ``classifier`` is the linear head.

    Args:
        in_channels (int, optional): Channels of the input images; filled in by the harness from
            the dataset. Default: 3.
        num_classes (int, optional): Outputs of the head; filled in by the harness from the dataset.
            Default: 4.
        image_size (int, optional): Side of the square input images in pixels (the first layer
            takes ``in_channels * image_size ** 2`` inputs); filled in by the harness from the dataset.
            Default: 32.
        hidden (list of int, optional): Widths of the hidden Linear-ReLU layers, one or more
            positive integers. Default: [256, 128].
        bias (bool, optional): Whether the linear layers have additive biases. Without them the network is
            positively homogeneous (f(0) = 0), so gradient x input, Integrated Gradients from a zero baseline
            and LRP-0 sum exactly to f(x) (the ``conservation`` experiment). Default: True.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 4, image_size: int = 32, hidden=(256, 128), bias: bool = True) -> None:
        super().__init__()
        hidden = [int(h) for h in hidden]
        if not hidden or any(h < 1 for h in hidden):
            raise ValueError(f"model.network.hidden must list one or more positive layer widths; got {hidden}")
        if not isinstance(bias, bool):
            raise ValueError(f"model.network.bias must be true or false; got {bias!r}")
        widths = [in_channels * image_size * image_size, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b, bias=bias), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(widths[-1], num_classes, bias=bias)

    def forward(self, x):
        return self.classifier(self.features(x))
