"""A small ReLU CNN with a global-average-pooled linear head.

Conv(3x3)-ReLU blocks with two max-pools, then global average pooling and one linear
layer, so the class score is a linear function of the pooled last conv features and
Class Activation Mapping (Zhou et al., CVPR 2016) applies directly. ``features`` is
the convolutional trunk (its last module is the last conv layer's ReLU) and
``classifier`` the head.
"""
from __future__ import annotations

from torch import nn


class SmallCNN(nn.Module):
    """A small ReLU CNN with a global-average-pooled linear head, so Class Activation Mapping applies.

    Five 3x3 conv-ReLU layers of ``width``, ``width``, ``2 width``, ``2 width`` and ``4 width``
    channels, with a 2x2 max-pool after the second and the fourth; then global average
    pooling and one linear layer. ``features`` is the trunk, ``classifier`` the head. It
    takes no ``image_size``: any size of at least 4 pixels works.

    Args:
        in_channels (int, optional): Channels of the input images; filled in by the harness from
            the dataset. Default: 3.
        num_classes (int, optional): Outputs of the head; filled in by the harness from the dataset.
            Default: 4.
        width (int, optional): Channels of the first block, a positive integer; doubled after
            each max-pool. Default: 16.
        bias (bool, optional): Whether the conv layers and the head have additive biases. Without them the
            network is positively homogeneous (f(a x) = a f(x) for a >= 0, f(0) = 0), so gradient x input,
            Integrated Gradients from a zero baseline and LRP-0 sum exactly to f(x) (the ``conservation``
            experiment). Default: True.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 4, width: int = 16, bias: bool = True) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"model.network.width must be a positive integer; got {width}")
        if not isinstance(bias, bool):
            raise ValueError(f"model.network.bias must be true or false; got {bias!r}")
        w, b = width, bias
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1, bias=b), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1, bias=b), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1, bias=b), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1, bias=b), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=b), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * w, num_classes, bias=b)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))
