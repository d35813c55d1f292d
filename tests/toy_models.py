"""Small models with known analytic behaviour, shared by the tests."""
from __future__ import annotations

import torch
from torch import nn


class LinearModel(nn.Module):
    """f(x) = W x + b on flattened images: gradient x input equals w_c * x exactly."""

    def __init__(self, channels: int = 3, size: int = 8, classes: int = 3, bias: bool = True, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.linear = nn.Linear(channels * size * size, classes, bias=bias)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(self.linear.weight.shape, generator=gen) * 0.1)
            if bias:
                self.linear.bias.copy_(torch.randn(classes, generator=gen) * 0.1)

    def forward(self, x):
        return self.linear(x.flatten(1))


def relu_cnn(channels: int = 3, classes: int = 3, bias: bool = False, seed: int = 0) -> nn.Module:
    """A ReLU CNN with max-pooling and a linear head; bias-free by default (positively homogeneous)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1, bias=bias), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, bias=bias), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, classes, bias=bias),
    ).eval()
