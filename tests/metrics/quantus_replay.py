"""Feeding our seeded draws to Quantus 0.6, so both libraries evaluate the same perturbations (not a test module).

Quantus draws its noise, subsets, other classes and randomised models from NumPy's global RNG and
torch.manual_seed; ours come from the counter-based streams of ``metrics._common`` and the seeded
re-initialisation of :class:`metrics.randomization.Randomization`. These hooks hand the draws that our
production code made (``MaxSensitivity.perturbed``, ``Removal.random_subsets``, ``Randomization.stages``,
``NoiseAveraged.unit_noise``) to Quantus through its own extension points or through the one NumPy call it
makes, in Quantus's call order. Used by tests/metrics/test_quantus_reference.py and
scripts/bench_metric_catalogue.py. Quantus calls ``np.trapz``, which NumPy 2.4 removed: import this module
first, it restores it.
"""
from __future__ import annotations

import contextlib
from unittest import mock

import numpy as np
import torch

if not hasattr(np, "trapz"):
    np.trapz = np.trapezoid


def gradient(model, inputs, targets):
    """The input gradient of the target logit (a nonlinear explainer on a ReLU CNN)."""
    x = torch.as_tensor(inputs).detach().clone().float().requires_grad_(True)
    t = torch.as_tensor(targets).long().view(-1, 1)
    (g,) = torch.autograd.grad(model(x).gather(1, t).sum(), x)
    return g


def quantus_explainer(model, inputs, targets, **kwargs):
    """:func:`gradient` with Quantus's explain_func signature (NumPy in, NumPy out)."""
    return gradient(model, inputs, targets).numpy()


class Replay:
    """A Quantus ``perturb_func`` returning our precomputed perturbed batches (S, N, ...), one per call, in Quantus's order."""

    def __init__(self, xs: torch.Tensor) -> None:
        self.xs, self.calls = xs.detach().numpy(), 0

    def __call__(self, arr, indices, **kwargs):
        out = self.xs[self.calls].reshape(arr.shape).astype(arr.dtype)
        self.calls += 1
        return out


class Subsets:
    """``np.random.choice`` for Quantus's FaithfulnessCorrelation: our subset of draw ``run`` for sample ``b``, in
    Quantus's call order (for each run, for each sample of the batch); ``removed`` is ``Removal.random_subsets``'s."""

    def __init__(self, removed, n: int, runs: int) -> None:
        self.removed, self.n, self.runs, self.calls = removed, n, runs, 0

    def __call__(self, a, size=None, replace=True, p=None):
        run, b = divmod(self.calls, self.n)
        assert run < self.runs and replace is False
        self.calls += 1
        mask = self.removed(torch.tensor([b]), torch.tensor([run]))[0]
        assert int(mask.sum()) == size
        return mask.nonzero().view(-1).numpy()


@contextlib.contextmanager
def our_subsets(metric, n: int, numel: int, size: int, stream: int):
    """While active, Quantus's ``np.random.choice`` returns ``metric``'s subsets of ``size`` pixels (seed stream ``stream``)."""
    removed = metric.removal.random_subsets(torch.arange(n), metric.n_perturbations, size, numel, stream)
    choice = Subsets(removed, n, metric.n_perturbations)
    with mock.patch.object(np.random, "choice", choice):
        yield choice


@contextlib.contextmanager
def our_stages(stages):
    """While active, Quantus's ``PyTorchModel.get_random_layer_generator`` yields ``stages`` ((layer name, randomised
    model) pairs): Quantus resets layers with their default init under torch.manual_seed, we redraw N(0, std^2)
    per tensor, so the randomised models are injected rather than re-drawn."""
    from quantus.helpers.model.pytorch_model import PyTorchModel

    with mock.patch.object(PyTorchModel, "get_random_layer_generator", lambda self, order="top_down", seed=42: iter(stages)):
        yield


def stage_copies(metric, model):
    """Each stage of ``metric``'s cascade (:meth:`Randomization.stages`) as its own copy of the model."""
    import copy

    return [(name, copy.deepcopy(m)) for name, m in metric.stages(model, metric.layers(model))]
