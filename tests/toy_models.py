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


class FailingModel(nn.Module):
    """Wraps a model and raises inside its forward on the ``fail_on``-th call (after the trunk ran,
    so hooks on inner modules have fired): checks that explainers clean up on exceptions."""

    def __init__(self, model: nn.Module, fail_on: int = 1) -> None:
        super().__init__()
        self.model, self.fail_on, self.calls = model, fail_on, 0

    def forward(self, x):
        self.calls += 1
        features = self.model.features(x)
        if self.calls == self.fail_on:
            raise RuntimeError("deliberate failure inside forward")
        return self.model.classifier(self.model.pool(features).flatten(1))


def model_snapshot(model: nn.Module) -> dict:
    """Everything an explainer must leave as it found it: parameters and buffers, hooks, modes, grad flags."""
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "hooks": {name: tuple(len(getattr(m, d)) for d in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                                                           "_backward_pre_hooks", "_forward_hooks_with_kwargs"))
                  for name, m in model.named_modules()},
        "hook_ids": {name: (tuple(m._forward_hooks), tuple(m._forward_pre_hooks), tuple(m._backward_hooks))
                     for name, m in model.named_modules()},
        "training": {name: m.training for name, m in model.named_modules()},
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
        "params": {name: id(p) for name, p in model.named_parameters()},
        "forwards": {name: m.forward for name, m in model.named_modules() if "forward" in m.__dict__},
    }


def assert_same_snapshot(before: dict, after: dict) -> None:
    assert before["state"].keys() == after["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(value, after["state"][key]), f"{key} changed"
    for field in ("hooks", "hook_ids", "training", "requires_grad", "params", "forwards"):
        assert before[field] == after[field], f"{field} changed"


class ResidualNet(nn.Module):
    """A bias-free ReLU net with residual adds written in ``forward`` (invisible to module hooks)."""

    def __init__(self, classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.block1 = nn.Sequential(nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, bias=False))
        self.block2 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, bias=False))
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, classes, bias=False)

    def forward(self, x):
        x = self.relu(self.stem(x))
        x = self.relu(x + self.block1(x))
        out = self.block2(x)
        out += x
        return self.head(self.pool(out).flatten(1))


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
