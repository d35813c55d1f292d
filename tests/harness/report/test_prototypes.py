"""Class prototypes (activation maximisation): analytic checks on a tiny linear model, then a logged run's model from the cache."""
import pandas as pd
import pytest
import torch
from matplotlib import image
from mlflow.tracking import MlflowClient
from torch import nn

from harness.report import prototypes


def linear_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(2 * 6 * 6, 3))


def test_each_prototype_raises_its_own_logit_and_is_seeded():
    model = linear_model()
    before = [p.detach().clone() for p in model.parameters()]
    found = prototypes.class_prototypes(model, 3, (2, 6, 6), steps=40, seed=3)
    again = prototypes.class_prototypes(model, 3, (2, 6, 6), steps=40, seed=3)
    other = prototypes.class_prototypes(model, 3, (2, 6, 6), steps=40, seed=4)
    assert found.shape == (3, 2, 6, 6) and torch.equal(found, again) and not torch.equal(found, other)
    with torch.no_grad():
        start, logits = model(torch.zeros(3, 2, 6, 6)), model(found)
    classes = torch.arange(3)
    assert (logits[classes, classes] > start[classes, classes] + 0.5).all()  # from the mean image (0), every class gained
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())


def test_on_a_linear_model_with_the_l2_penalty_alone_the_prototype_is_the_analytic_optimum():
    # maximise w_c . x - l2 * mean(x^2): the optimum is x* = w_c * N / (2 * l2), N = the pixels of one image
    model = linear_model(2)
    l2, pixels = 20.0, 2 * 6 * 6
    found = prototypes.class_prototypes(model, 3, (2, 6, 6), steps=300, lr=0.01, l2=l2, tv=0, jitter=0)
    optimum = model[1].weight.detach().reshape(3, 2, 6, 6) * pixels / (2 * l2)
    assert torch.allclose(found, optimum, atol=0.02), (found - optimum).abs().max()


def test_prototypes_stay_in_the_pixel_range_and_the_penalties_shrink_them():
    model = linear_model(1)
    low, high = torch.tensor([-1.0, -0.5]), torch.tensor([1.0, 0.5])
    found = prototypes.class_prototypes(model, 3, (2, 6, 6), steps=60, low=low, high=high)
    assert (found[:, 0].abs() <= 1 + 1e-6).all() and (found[:, 1].abs() <= 0.5 + 1e-6).all()
    free = prototypes.class_prototypes(model, 3, (2, 6, 6), steps=60, l2=0, tv=0, jitter=0)
    held = prototypes.class_prototypes(model, 3, (2, 6, 6), steps=60, l2=5.0, tv=5.0, jitter=0)
    assert held.norm() < free.norm() and prototypes.total_variation(held).sum() < prototypes.total_variation(free).sum()
    with pytest.raises(ValueError, match="steps >= 1"):
        prototypes.class_prototypes(model, 3, (2, 6, 6), steps=0)


@pytest.mark.slow
def test_a_logged_runs_model_comes_back_from_the_cache_and_its_prototypes_are_drawn(make_cfg, tmp_path):
    from harness.runner import run

    outcome = run(make_cfg("metric=[deletion]", "eval.n_samples=4"))
    client = MlflowClient()
    assert client.get_run(outcome.run_id).data.tags[prototypes.MODEL_KEY_TAG]
    model, dataset = prototypes.model_of_run(client, outcome.run_id)
    scores = pd.read_csv(client.download_artifacts(outcome.run_id, "scores.csv", str(tmp_path)))
    picked = dataset.split("test").select(torch.tensor(scores["index"].tolist()))
    with torch.no_grad():  # the same weights as the run's model: the same predictions as it logged
        assert model(picked.images).argmax(1).tolist() == scores["predicted"].tolist()
    panel = prototypes.prototypes_of_run(client, outcome.run_id, steps=8)
    assert panel["images"].shape == (dataset.num_classes, dataset.image_size, dataset.image_size, dataset.channels)
    assert panel["images"].min() >= 0 and panel["images"].max() <= 1
    assert prototypes.save({"small_cnn, seed 0": panel}, tmp_path) == ["prototypes.png"]
    assert image.imread(tmp_path / "prototypes.png")[..., :3].std() > 0.02
