"""Explainers that fail mid-run, to test that failed runs are recorded as FAILED."""
import torch


class ExplodingExplainer:
    def __call__(self, model, inputs, targets):
        raise RuntimeError("deliberate failure inside the explainer")

    def forward_passes_per_sample(self, shape):
        return 1


class ZeroExplainer:
    def __call__(self, model, inputs, targets):
        return torch.zeros_like(inputs)

    def forward_passes_per_sample(self, shape):
        return 0


def maybe_exploding(fail: bool = False):
    """A zero map, or (``fail=True``) an explainer that raises when called."""
    return ExplodingExplainer() if fail else ZeroExplainer()
