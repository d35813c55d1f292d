"""The ``roar`` experiment's finding, asserted on a cheaper configuration of it (fixed seed).

Published finding (Hooker et al., NeurIPS 2019): retrained without the top-t pixels of their maps,
models lose no more accuracy for gradient, integrated gradients and guided backprop than for a random
ranking; SmoothGrad-squared and VarGrad remove far more. On this data (README, ``roar``) only part of
it holds (three seeds, five fractions): guided backprop is no better than random, as published;
gradient and integrated gradients are better than random at t <= 0.5 (unlike the paper);
SmoothGrad-squared and VarGrad beat random only at small t (at t = 0.3 on every seed, at t = 0.5 on some)
and are worse than random at t >= 0.7, so they are not asserted; at t >= 0.7 random removal leaves the
least information of all.

Here, what the experiment does at a size CI can afford: ``SpuriousShapes`` at 16 px with a background
that carries no class (``spurious_correlation`` 0.25, chance for 4 classes), 800 training images,
``SmallCNN(width=8)``, the experiment's monitored training (He init, a seeded held-out fifth, best
epoch by validation loss, patience 5, at most 25 epochs), one fraction t = 0.5, accuracy on 256 test
images; the real :class:`metrics.ROAR` and :func:`harness.training.train`.

Measured with exactly this configuration (the helper ``measured``) on seeds 0, 1, 2 and 3, accuracy at
t = 0.5 (unmodified model 0.980 / 0.980 / 0.965 / 0.957):

seed 0: random 0.633, guided backprop 0.680, gradient 0.562 (GB - random +0.047, random - gradient 0.071, GB - gradient 0.118)
seed 1: random 0.566, guided backprop 0.578, gradient 0.375 (+0.012, 0.191, 0.203)
seed 2: random 0.512, guided backprop 0.727, gradient 0.363 (+0.215, 0.149, 0.364)
seed 3: random 0.586, guided backprop 0.637, gradient 0.484 (+0.051, 0.102, 0.152)

So guided backprop was never better than random (smallest gap +0.012; margin: no more than 0.05 below),
random never removed as much as gradient (smallest gap 0.071; margin 0.03), and guided backprop always
removed less than gradient (smallest gap 0.118; margin 0.06). SmoothGrad-squared (8 samples) measured
0.648 / 0.395 / 0.363 on seeds 0-2: better than random on seeds 1 and 2, not on seed 0, so not asserted.
The test runs seed 0: four trainings of at most 25 epochs on 640 images, 18 s on one thread at load
average 5 on the shared 2-core machine.
"""
from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

import methods
from harness.datasets import ImageSplit, SpuriousShapes
from harness.models import SmallCNN
from harness.training import train
from metrics import ROAR

SEED = 0
CPU = torch.device("cpu")
TRAINING = OmegaConf.create({"training": {
    "optimizer": "adam", "epochs": 25, "batch_size": 64, "lr": 0.003, "weight_decay": 0.0,
    "init": "kaiming", "validation_fraction": 0.2, "patience": 5,
}})

def model_of(seed: int) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(3, 4, width=8)


class Retrain:
    """:class:`metrics.types.Retrain`: SmallCNN(width=8) trained from ``seed`` with the monitored settings above."""

    def __init__(self, split: ImageSplit, seed: int) -> None:
        self.train_images, self.train_labels, self.seed = split.images, split.labels, seed

    def __call__(self, images, identity: dict):
        model = model_of(self.seed)
        train(model, ImageSplit(images(), self.train_labels), TRAINING, self.seed, CPU)
        return model


def measured(seed: int) -> dict[str, float]:
    """Accuracy of the model retrained without the top half of the pixels, per method (lower: more removed)."""
    data = SpuriousShapes(seed=seed, n_train=800, n_test=256, image_size=16, spurious_correlation=0.25)
    train_split, test = data.split("train"), data.split("test")
    model = model_of(seed)
    train(model, train_split, TRAINING, seed, CPU)
    accuracy = {"unmodified": float((model(test.images).argmax(1) == test.labels).float().mean())}
    for name, explainer in {"random": methods.Random(seed=seed), "guided_backprop": methods.GuidedBackprop(),
                            "gradient": methods.Gradient()}.items():
        maps = explainer(model, test.images, test.labels)
        result = ROAR(fractions=[0.5], seed=seed)(model, test.images, test.labels, maps, retrain=Retrain(train_split, seed),
                                                  explainer=explainer, labels=test.labels)
        accuracy[name] = float(result.curves.mean())
    return accuracy


@pytest.mark.slow
def test_guided_backprop_is_no_better_than_random_and_gradient_is_better():
    accuracy = measured(SEED)
    assert accuracy["unmodified"] >= 0.9, accuracy                            # the shapes are learnt
    assert accuracy["guided_backprop"] - accuracy["random"] > -0.05, accuracy  # as published: no better than random
    assert accuracy["random"] - accuracy["gradient"] > 0.03, accuracy          # unlike the paper: gradient removes more
    assert accuracy["guided_backprop"] - accuracy["gradient"] > 0.06, accuracy
