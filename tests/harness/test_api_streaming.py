"""``harness.evaluate`` streams its inputs (issue 17): a DataLoader is explained and scored batch by batch, with the
per-sample scores of one in-memory batch, also for a stochastic method (seeded per sample id)."""
import numpy as np
import torch

import harness
from methods import Random
from tests.toy_models import relu_cnn


def test_a_dataloader_is_streamed_batch_by_batch_with_the_in_memory_scores():
    model = relu_cnn(channels=1, classes=3)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(10, 1, 8, 8, generator=gen), torch.arange(10) % 3
    calls = []

    class Counting(Random):
        def __call__(self, model, inputs, targets, ids=None):
            calls.append(len(inputs))
            return super().__call__(model, inputs, targets, ids=ids)

    settings = {"methods": {"random": Counting(seed=3)}, "metrics": {"deletion": {"steps": 0.25}}, "device": "cpu", "targets": "label"}
    whole = harness.evaluate(model, x, labels=y, batch_size=10, **settings)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    streamed = harness.evaluate(model, loader, **settings)
    assert calls == [10, 4, 4, 2]  # one call per batch the loader yields: its images are never all in memory
    assert streamed["sample"].tolist() == whole["sample"].tolist() == list(range(10))
    assert streamed["label"].tolist() == y.tolist()
    np.testing.assert_allclose(streamed["score"].to_numpy(), whole["score"].to_numpy(), rtol=1e-6)
