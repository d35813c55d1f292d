"""The ablation-curve engine shared by deletion and insertion (RISE, Petsiuk, Das & Saenko, BMVC 2018).

Features (pixels with all channels together, or square patches) are ranked by their
channel-pooled attribution, ties broken by a seeded random order. Step k of K
changes the first ``count_k`` features of that order (MoRF: most relevant first;
LeRF: least relevant first), where ``count_k = min(k * step, F)``, ``step =
max(1, round(steps * F))`` and K = ceil(F / step), so the curve has K + 1 points
including both end points and its x-axis is ``count_k / F`` in [0, 1].

* deletion: start from x, replace changed features by the substrate;
* insertion: start from the substrate, restore changed features from x.

The score is the softmax probability (or logit) of the target class, by default the
class the model predicts on the clean input. The per-sample score is the trapezoid
area under the curve on the [0, 1] x-axis, so areas compare across step counts.

Every perturbed image of every step of every sample is built on the fly and pushed
through the model in chunks of ``chunk_size`` images (automatic by default); the
scores do not depend on the chunk size.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from metrics.result import MetricResult

SUBSTRATES = ("mean", "zero", "blur", "noise")
POOLINGS = ("sum", "abs_sum", "max")
GRANULARITIES = ("pixel", "patch")
SCORES = ("softmax", "logit")
TARGETS = ("predicted", "label", "explained")
ORDERS = ("morf", "lerf")
AUTO_CHUNK_BYTES = 256 * 2**20


def _choice(name: str, key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name}.{key} must be one of {', '.join(allowed)}; got {value!r}")
    return value


class AblationCurve:
    """Deletion (``mode='deletion'``) or insertion (``mode='insertion'``) curves and their AUC."""

    name = "ablation"

    def __init__(
        self,
        mode: str,
        steps: float = 0.05,
        substrate: str = "mean",
        granularity: str = "pixel",
        patch_size: int = 4,
        pooling: str = "sum",
        score: str = "softmax",
        target: str = "predicted",
        order: str = "morf",
        blur_sigma: float = 5 / 224,
        chunk_size: int | None = None,
        seed: int | None = None,
    ) -> None:
        name = mode
        self.mode = _choice(name, "mode", mode, ("deletion", "insertion"))
        if not (isinstance(steps, (int, float)) and 0 < steps <= 1):
            raise ValueError(f"{name}.steps is the fraction of features changed per step and must be in (0, 1]; got {steps}")
        if patch_size < 1:
            raise ValueError(f"{name}.patch_size must be a positive integer; got {patch_size}")
        if blur_sigma <= 0:
            raise ValueError(f"{name}.blur_sigma must be positive (a fraction of the image size); got {blur_sigma}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"{name}.chunk_size must be a positive integer or null (automatic); got {chunk_size}")
        self.steps, self.patch_size, self.blur_sigma = float(steps), int(patch_size), float(blur_sigma)
        self.substrate = _choice(name, "substrate", substrate, SUBSTRATES)
        self.granularity = _choice(name, "granularity", granularity, GRANULARITIES)
        self.pooling = _choice(name, "pooling", pooling, POOLINGS)
        self.score = _choice(name, "score", score, SCORES)
        self.target = _choice(name, "target", target, TARGETS)
        self.order = _choice(name, "order", order, ORDERS)
        self.chunk_size, self.seed = chunk_size, seed

    # -- building blocks -------------------------------------------------------------
    def feature_map(self, height: int, width: int, device: torch.device) -> tuple[torch.Tensor, int]:
        """(H, W) long tensor giving each pixel's feature index, and the number of features."""
        if self.granularity == "pixel":
            return torch.arange(height * width, device=device).view(height, width), height * width
        p = self.patch_size
        rows, cols = torch.arange(height, device=device) // p, torch.arange(width, device=device) // p
        n_cols = math.ceil(width / p)
        return rows.view(-1, 1) * n_cols + cols.view(1, -1), math.ceil(height / p) * n_cols

    def pooled(self, attributions: torch.Tensor) -> torch.Tensor:
        a = attributions.detach().float()
        if self.pooling == "sum":
            return a.sum(1)
        if self.pooling == "abs_sum":
            return a.abs().sum(1)
        return a.amax(1)

    def ranks(self, attributions: torch.Tensor, features: torch.Tensor, n_features: int) -> torch.Tensor:
        """(N, H, W) rank of each pixel's feature in the perturbation order (0 = changed first)."""
        n = attributions.shape[0]
        relevance = torch.zeros(n, n_features, device=attributions.device)
        relevance.index_add_(1, features.flatten(), self.pooled(attributions).flatten(1))
        if self.order == "lerf":
            relevance = -relevance
        gen = torch.Generator(device="cpu").manual_seed(0 if self.seed is None else self.seed)
        shuffle = torch.rand(n, n_features, generator=gen).argsort(1).to(relevance.device)
        # Stable sort of the shuffled relevances: equal relevances keep the seeded random order.
        order = shuffle.gather(1, relevance.gather(1, shuffle).sort(dim=1, descending=True, stable=True).indices)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(n_features, device=order.device).expand(n, -1))
        return rank[:, features]

    def substrate_for(self, inputs: torch.Tensor, mean: torch.Tensor | None, std: torch.Tensor | None) -> torch.Tensor:
        if self.substrate == "mean":  # the dataset mean, i.e. zero in normalised space (RISE)
            return torch.zeros_like(inputs)
        channels = inputs.shape[1]
        mean = torch.zeros(channels) if mean is None else torch.as_tensor(mean, dtype=inputs.dtype)
        std = torch.ones(channels) if std is None else torch.as_tensor(std, dtype=inputs.dtype)
        mean, std = mean.to(inputs.device).view(1, -1, 1, 1), std.to(inputs.device).view(1, -1, 1, 1)
        if self.substrate == "zero":  # black in pixel space
            return (torch.zeros_like(inputs) - mean) / std
        if self.substrate == "noise":  # seeded uniform noise in pixel space [0, 1]
            gen = torch.Generator(device="cpu").manual_seed(1 if self.seed is None else self.seed + 1)
            return (torch.rand(inputs.shape, generator=gen, dtype=inputs.dtype).to(inputs.device) - mean) / std
        sigma = self.blur_sigma * max(inputs.shape[-2:])
        kernel = 2 * math.ceil(2 * sigma) + 1  # 11 at sigma = 5 (224 px), as RISE
        return gaussian_blur(inputs, [kernel, kernel], [sigma, sigma])

    @staticmethod
    def auto_chunk(inputs: torch.Tensor) -> int:
        per_image = inputs[0].numel() * inputs.element_size() * 8  # the image, activations headroom
        return max(1, AUTO_CHUNK_BYTES // per_image)

    # -- the metric --------------------------------------------------------------------
    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        n, _, height, width = inputs.shape
        if attributions.shape[0] != n or attributions.shape[-2:] != inputs.shape[-2:]:
            raise ValueError(f"{self.mode}: attributions of shape {tuple(attributions.shape)} do not match inputs of shape {tuple(inputs.shape)}")
        features, n_features = self.feature_map(height, width, inputs.device)
        rank = self.ranks(attributions.to(inputs.device), features, n_features).unsqueeze(1)  # (N, 1, H, W)
        step = max(1, round(self.steps * n_features))
        n_steps = math.ceil(n_features / step)
        counts = torch.clamp(torch.arange(n_steps + 1, device=inputs.device) * step, max=n_features)
        substrate = self.substrate_for(inputs, context.get("mean"), context.get("std"))
        start, finish = (inputs, substrate) if self.mode == "deletion" else (substrate, inputs)

        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                cls = self._classes(model, inputs, targets, context)
                total = n * (n_steps + 1)
                chunk = self.chunk_size or self.auto_chunk(inputs)
                values = torch.empty(total, device=inputs.device)
                for lo in range(0, total, chunk):
                    idx = torch.arange(lo, min(lo + chunk, total), device=inputs.device)
                    sample, k = idx // (n_steps + 1), idx % (n_steps + 1)
                    changed = rank[sample] < counts[k].view(-1, 1, 1, 1)
                    batch = torch.where(changed, finish[sample], start[sample])
                    logits = model(batch).float()
                    out = logits.softmax(1) if self.score == "softmax" else logits
                    values[idx] = out.gather(1, cls[sample].view(-1, 1)).squeeze(1)
        finally:
            model.train(was_training)
        curves = values.view(n, n_steps + 1)
        x = counts.double() / n_features
        auc = torch.trapezoid(curves.double(), x.view(1, -1).expand(n, -1), dim=1).float()
        higher = self.mode == "insertion" if self.order == "morf" else self.mode == "deletion"
        return MetricResult(scores=auc, higher_is_better=higher, curves=curves.cpu(), curve_x=x.float().cpu())

    def _classes(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, context: dict) -> torch.Tensor:
        if self.target == "predicted":
            chunk = self.chunk_size or self.auto_chunk(inputs)
            return torch.cat([model(x).argmax(1) for x in inputs.split(chunk)])
        if self.target == "label":
            if context.get("labels") is None:
                raise ValueError(f"{self.mode}.target=label needs the labels in the context (labels=...)")
            return torch.as_tensor(context["labels"], device=inputs.device).long()
        return torch.as_tensor(targets, device=inputs.device).long()
