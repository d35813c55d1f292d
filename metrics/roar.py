"""ROAR, RemOve And Retrain (Hooker, Erhan, Kindermans & Kim, "A benchmark for interpretability
methods in deep neural networks", NeurIPS 2019).

Definition: for each fraction t in ``fractions``, replace the top-t fraction of the pixels of
every training image and of every evaluated test image, ranked by the method's attribution, by
the per-channel mean of the training images (as the paper does); retrain the same architecture
from scratch, from the same seed and with the same training settings, on the modified training
images; measure its accuracy on the modified test images. If the removed features carried the
class, accuracy falls; if the method ranks no better than chance, it falls no faster than for
the ``random`` method, the control ROAR must always be compared with (the paper's finding:
gradient, integrated gradients and guided backprop are no better than random, SmoothGrad-squared
and VarGrad are). Retraining is what separates ROAR from deletion: the drop cannot come from the
removed pixels being out of the training distribution.

Conventions:

* A feature is a pixel (all channels removed together), ranked by the map pooled over channels
  (``pooling``; default ``abs_sum``, the magnitude); ties (e.g. a constant map) are broken in a
  random order seeded per image (``seed``), never by position.
* Training images are explained for their label (the class the model was trained to predict);
  the evaluated test images use the run's maps (``eval.target``).
* Accuracy is measured on the run's evaluated test images (``eval.n_samples``); select every
  test image for the paper's test accuracy.
* ``fractions`` are strictly increasing in (0, 1); ``round(t * H * W)`` pixels are removed.

The seam to the harness: a metric never imports ``harness``, so it trains through
``context["retrain"]``, a :class:`metrics.types.Retrain` the runner supplies (like ``progress``).
The retrained models are cached like any trained model, under the run model's key extended with
the removal's identity (this metric's settings and t, the method config and code, and the key of
the model whose attributions chose the pixels); on a cache hit the training images are not even
explained. Cost: one explanation of every training image, and one training of the model per
fraction, the first time (five trainings at the default); a cached repeat costs one forward pass
per fraction. Memory: one int32 rank per training pixel.

``scores``: per evaluated image, the normalised area under its correctness (0 or 1) over the
fractions, trapezoidal, divided by the span of the fractions (with one fraction: the correctness);
their mean, the headline, is the normalised area under the ROAR accuracy curve. Lower is better
(more faithful). ``curves``: (N, K) correctness per fraction, ``curve_x`` the fractions: their
mean over the samples is the paper's accuracy-vs-t curve. A retrained model that predicts one
class for at least 95 % of the evaluated images (of 16 or more) is warned about: a failed
training (loss stuck at ln C) scores chance accuracy exactly as a complete removal of the
information would, and the two cannot be told apart from the accuracy alone.

How the models are retrained is the run's ``model.training`` (the retrained models train exactly as
the unmodified one). The ``roar`` experiment turns on the harness's monitored training
(:mod:`harness.training.loop`): He initialisation, a seeded held-out fifth of the modified training
images, the epoch with the lowest validation loss kept, early stopping. The test split selects
nothing. With it, a retrained model predicting one class on its held-out images is also warned about
when it is trained: a failed training is flagged, never retried or replaced behind the user's back.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from methods.types import explain_samples
from methods.validation import check_choice, check_int, check_seed
from metrics._common import POOLINGS, check_maps, no_progress, pool_channels, predictions, random_keys, sample_ids, untouched
from metrics.result import MetricResult
from metrics.types import Retrain

TRAIN_STREAM, TEST_STREAM = 71, 72   # random tie-break streams of the training and the test images


def ranks(maps: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """(N, H*W) int32: each pixel's rank in its image, 0 the most important; ties in the random order of ``keys``."""
    flat = maps.flatten(1)
    shuffle = keys.argsort(1)                                                   # a random permutation per image
    by_value = flat.gather(1, shuffle).sort(dim=1, descending=True, stable=True).indices
    order = shuffle.gather(1, by_value)                                         # pixels, most important first
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return rank.int()


def remove(images: torch.Tensor, rank: torch.Tensor, k: int, fill: torch.Tensor) -> torch.Tensor:
    """``images`` with the pixels of rank < k replaced by ``fill`` (C,) in every channel."""
    n, c, h, w = images.shape
    gone = (rank < k).view(n, 1, h, w).to(images.device)
    return torch.where(gone, fill.to(images).view(1, c, 1, 1), images)


DEGENERATE_SHARE = 0.95   # a retrained model predicting one class this often is flagged (a failed training looks like removal)
MIN_FOR_DEGENERATE = 16   # evaluated images below which the check is not made (a batch this small can be one class)


class ROAR:
    """ROAR: retrain after removing the top-t pixels by attribution; accuracy on the modified test images (module docstring).

    Lower is better; headline: the normalised area under the accuracy-vs-t curve. ``needs`` is empty,
    but the context must bring ``retrain`` (:class:`metrics.types.Retrain`), ``explainer`` and ``labels``.

    Args:
        fractions (list of float, optional): The fractions t of pixels removed, strictly increasing in (0, 1);
            one retrained model each. Default: ``[0.1, 0.3, 0.5, 0.7, 0.9]``.
        pooling (str, optional): Channel pooling that ranks the pixels: ``sum``, ``abs_sum``, ``max`` or
            ``abs_max``. Default: ``abs_sum``.
        batch_size (int, optional): Training images explained per call of the explainer. Default: 64.
        seed (int or None, optional): Seed of the random tie-break; None: the run's seed. Default: None.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, fractions: list[float] | tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9), pooling: str = "abs_sum",
                 batch_size: int = 64, seed: int | None = None) -> None:
        values = list(fractions) if hasattr(fractions, "__iter__") and not isinstance(fractions, str) else None
        if (not values or any(isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < 1 for t in values)
                or any(b <= a for a, b in zip(values, values[1:]))):
            raise ValueError(f"roar.fractions must be a non-empty, strictly increasing list of numbers in (0, 1); got {fractions!r}")
        self.fractions = [float(t) for t in values]
        self.pooling = check_choice("roar", "pooling", pooling, POOLINGS)
        self.batch_size = check_int("roar", "batch_size", batch_size)
        self.seed = check_seed("roar", seed)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through a model: one per fraction (the retrained models; training is not counted here)."""
        return len(self.fractions)

    def identity(self, t: float) -> dict:
        """What this metric does to the training images at fraction ``t`` (part of the retrained model's cache key)."""
        return {"metric": "roar", "fraction": t, "pooling": self.pooling, "fill": "train_channel_mean",
                "train_target": "label", "seed": self.seed}

    def train_ranks(self, model: nn.Module, explainer, retrain: Retrain, device: torch.device, progress) -> torch.Tensor:
        """(N_train, H*W) ranks of the training images' pixels by the explainer's maps for their labels (CPU)."""
        images, labels = retrain.train_images, retrain.train_labels
        out = []
        with progress(len(labels), "roar: explaining the training images", "img") as tick:
            for start in range(0, len(labels), self.batch_size):
                x = images[start:start + self.batch_size].to(device)
                y = labels[start:start + self.batch_size].to(device)
                ids = torch.arange(start, start + len(y), device=device)  # the training images' indices: their ids
                maps = pool_channels(check_maps("roar", x, explain_samples(explainer, model, x, y, ids)), self.pooling)
                bad = int((~torch.isfinite(maps.flatten(1))).any(1).sum())
                if bad:
                    raise ValueError(f"roar: the explainer returned non-finite attributions for {bad} training images; "
                                     "ROAR needs a ranking of every pixel of every training image")
                out.append(ranks(maps, random_keys(self.seed, TRAIN_STREAM, ids, maps[0].numel())).cpu())
                tick(len(y))
        return torch.cat(out)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        retrain, explainer, labels = context.get("retrain"), context.get("explainer"), context.get("labels")
        if not isinstance(retrain, Retrain):
            raise ValueError("roar needs context['retrain'] (metrics.types.Retrain: the harness's runner gives it) to retrain the model")
        if explainer is None or labels is None:
            raise ValueError("roar needs the run's explainer and the labels in the context (explainer=..., labels=...)")
        maps = pool_channels(check_maps("roar", inputs, attributions), self.pooling)
        if not bool(torch.isfinite(maps).all()):
            raise ValueError("roar: the attributions of the evaluated images are not all finite; ROAR needs a ranking of every pixel")
        if retrain.train_images.shape[1:] != inputs.shape[1:]:
            raise ValueError(f"roar: training images {tuple(retrain.train_images.shape[1:])} and inputs {tuple(inputs.shape[1:])} differ")
        labels = torch.as_tensor(labels, device=inputs.device).long().reshape(-1)
        fill = retrain.train_images.double().mean((0, 2, 3)).float()   # the per-channel mean of the training images
        pixels = maps[0].numel()
        test_rank = ranks(maps, random_keys(self.seed, TEST_STREAM, sample_ids(len(inputs), context, inputs.device), pixels))
        memo: dict[str, torch.Tensor] = {}

        def modified_train(k: int) -> Callable[[], torch.Tensor]:
            def make() -> torch.Tensor:
                if "ranks" not in memo:
                    memo["ranks"] = self.train_ranks(model, explainer, retrain, inputs.device, context.get("progress") or no_progress)
                return remove(retrain.train_images, memo["ranks"], k, fill)
            return make

        correct = []
        for t in self.fractions:
            k = round(t * pixels)
            retrained = retrain(modified_train(k), self.identity(t))
            with untouched(retrained):
                predicted = predictions(retrained, remove(inputs.detach(), test_rank, k, fill))
            correct.append(predicted == labels)
            top = torch.bincount(predicted).max() if len(predicted) >= MIN_FOR_DEGENERATE else 0
            if top >= DEGENERATE_SHARE * len(predicted):
                warnings.warn(f"roar: the model retrained at t={t:g} predicts one class for at least {DEGENERATE_SHARE:.0%} of the "
                              "evaluated images, a degenerate (possibly failed) training: its accuracy is not evidence of removed "
                              "information (check its training loss, or train longer)", stacklevel=2)
        curves = torch.stack(correct, 1).float().cpu()
        x = torch.tensor(self.fractions)
        scores = curves[:, 0] if len(x) == 1 else torch.trapezoid(curves, x, dim=1) / (x[-1] - x[0])
        return MetricResult(scores=scores, higher_is_better=False, curves=curves, curve_x=x)
