"""The ``deletion_insertion`` experiment's finding, asserted on a tiny trained model.

Published finding (Petsiuk et al. 2018, RISE): a method that ranks the pixels the model uses first
makes the class probability fall faster when they are deleted (lower deletion AUC) and rise faster
when they are inserted (higher insertion AUC) than a random order does. Tomsett et al. (AAAI 2020):
the ranking of methods depends on the substrate the deleted pixels are replaced with; Rong et al.
(ICML 2022): ROAD's imputation makes MoRF and LeRF rankings more consistent than plain deletion.

Reduced settings that still show the first part (the experiment uses 24 px, 1500 images, 6 epochs,
correlation 0.5, width 16, 32 images): ``SpuriousShapes`` at 16 px, correlation 0.95, 400 training
images, ``SmallCNN(width=8)`` trained 4 epochs (it fits the training backgrounds: train accuracy
0.57-0.96 over the seeds; the finding is about the model, whatever it learned), 16 test images;
``metrics.deletion.Deletion`` with the mean, blur, noise and ROAD substrates (MoRF and, for mean and
ROAD, LeRF) and ``metrics.insertion.Insertion`` (blur), 20 steps each.

Measured on seeds 0, 1 and 2 with the 6 methods here (the margins first with occlusion too, 7 methods):
- IG beats ``random`` on deletion (mean, MoRF) by 0.187 / 0.210 / 0.115 and on insertion by 0.016 /
  0.012 / 0.028: margins 0.05 and 0.005 (insertion from blur moves little at 16 px: the blurred start
  image still carries the class, and the metric warns so).
- Guided backprop is worse than ``random`` on deletion (0.791 vs 0.671, 0.560 vs 0.555, 0.706 vs
  0.579): not asserted, the seed-1 gap is 0.005.
- Kendall's tau between the methods' rankings: mean vs noise substrate 1.00 / 0.87 / 1.00 (asserted
  > 0.5); MoRF vs LeRF 1.00 / 0.87 / 1.00 for the mean substrate and 0.47 / 0.60 / 0.87 for ROAD
  (with 7 methods: mean vs blur 0.90 / 1.00 / 0.81, mean vs ROAD 0.81 / 0.90 / 0.71). So ROAD is *not* more consistent
  between the orders here, as in the experiment; that part of the finding is reported (the test
  prints every tau), not asserted. The test runs seed 0.
"""
from __future__ import annotations

import itertools

import pytest
import torch
from omegaconf import OmegaConf

import methods
from harness.datasets import SpuriousShapes
from harness.models import SmallCNN
from harness.report.stats import tau
from harness.training import train
from metrics.deletion import Deletion
from metrics.insertion import Insertion

SEED = 0
TRAINING = OmegaConf.create({"training": {"optimizer": "adam", "epochs": 4, "batch_size": 64, "lr": 0.003, "weight_decay": 0.0}})
EXPLAINERS = {"saliency": methods.Saliency, "gradient_x_input": methods.GradientXInput,
              "integrated_gradients": lambda: methods.IntegratedGradients(n_steps=16), "guided_backprop": methods.GuidedBackprop,
              "random": lambda: methods.Random(seed=SEED), "sobel": methods.Sobel}
METRICS = {f"deletion_{substrate}_{order}": (lambda s=substrate, o=order: Deletion(substrate=s, order=o, abpc=False, seed=SEED))
           for substrate, order in [("mean", "morf"), ("blur", "morf"), ("noise", "morf"), ("road", "morf"), ("mean", "lerf"),
                                    ("road", "lerf")]}
METRICS["insertion"] = lambda: Insertion(abpc=False, seed=SEED)


def scores() -> dict[str, dict[str, float]]:
    """Mean score of every metric for every method on the tiny model (module docstring)."""
    data = SpuriousShapes(image_size=16, n_train=400, n_test=64, spurious_correlation=0.95, seed=SEED)
    torch.manual_seed(SEED)
    model = SmallCNN(width=8)
    train(model, data.split("train"), TRAINING, SEED, torch.device("cpu"))
    x = data.split("test").images[:16]
    with torch.no_grad():
        targets = model(x).argmax(1)
    table = {}
    with pytest.warns(UserWarning, match="insertion: the blur start image"):   # said once per method; see the docstring
        for name, make in EXPLAINERS.items():
            maps = make()(model, x, targets)
            table[name] = {metric: float(build()(model, x, targets, maps).scores.mean()) for metric, build in METRICS.items()}
    return table


@pytest.mark.slow
def test_a_faithful_method_beats_random_on_deletion_and_insertion_and_substrates_are_compared():
    table = scores()
    ig, random = table["integrated_gradients"], table["random"]
    assert random["deletion_mean_morf"] - ig["deletion_mean_morf"] > 0.05, (ig, random)
    assert ig["insertion"] - random["insertion"] > 0.005, (ig, random)

    def ranking(metric: str) -> list[float]:   # signed so that higher is better (MoRF deletion: lower is better)
        sign = -1.0 if metric.startswith("deletion") and metric.endswith("morf") else 1.0
        return [sign * table[m][metric] for m in EXPLAINERS]

    taus = {(a, b): tau(ranking(a), ranking(b)) for a, b in itertools.combinations(METRICS, 2)}
    for (a, b), value in taus.items():
        print(f"Kendall tau {a} vs {b}: {value:+.2f}")   # reported (pytest -s): the substrate and order dependence
        assert -1.0 <= value <= 1.0
    assert taus[("deletion_mean_morf", "deletion_noise_morf")] > 0.5, taus
