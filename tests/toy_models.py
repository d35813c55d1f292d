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


def snapshot(model: nn.Module) -> tuple:
    """Everything a metric must leave alone: modes, requires_grad flags, parameter and buffer values, hooks."""
    modes = tuple(m.training for m in model.modules())
    flags = tuple(p.requires_grad for p in model.parameters())
    values = tuple(t.detach().clone().numpy().tobytes() for t in list(model.parameters()) + list(model.buffers()))
    hooks = tuple(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())
    return modes, flags, values, hooks


def relu_cnn_bn(channels: int = 3, classes: int = 3, seed: int = 0) -> nn.Module:
    """A biased ReLU CNN with an eval-mode BatchNorm with non-trivial statistics (still piecewise linear)."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, classes),
    )
    bn = net[1]
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(8) * 0.3)
        bn.running_var.copy_(torch.rand(8) + 0.5)
        bn.weight.copy_(torch.rand(8) + 0.5)
        bn.bias.copy_(torch.randn(8) * 0.2)
    return net.eval()


try:
    import pytest

    @pytest.fixture(autouse=True, scope="module")
    def single_thread():
        """Import into a test module: run it with one intra-op thread (the test machine has 2 shared cores;
        two spinning OpenMP threads under load are ~10x slower for these tiny models). Restored afterwards."""
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(before)
except ImportError:  # pragma: no cover - toy models are usable without pytest
    pass
