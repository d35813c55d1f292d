"""Per-sample seeding (issue 17): a stochastic explainer's map of a sample depends only on (seed, its id).

Explained all at once, in batches of 2, or in another order (what eval.batch_size and eval.shards do), every
sample gets the same map; another id or seed gives another map. Expected Gradients with a training-set
background is checked against its closed form on a linear model.
"""
import pytest
import torch

from methods import LIME, RISE, ExpectedGradients, IntegratedGradients, KernelSHAP, Occlusion, PerSampleSeeded, Random, SmoothGrad, UsesTrainingImages
from methods.randomness import keys_at, normal, random_keys, uniform, uniform_at
from metrics import Conservation
from tests.toy_models import LinearModel, relu_cnn

N = 8
GEN = torch.Generator().manual_seed(5)
BACKGROUND = torch.randn(5, 3, 16, 16, generator=GEN)


def explainers():
    return {
        "smoothgrad": SmoothGrad(n_samples=3, batch_size=5, seed=1),
        "vargrad": SmoothGrad(variant="vargrad", n_samples=3, seed=1),
        "rise": RISE(n_masks=12, cell_size=4, batch_size=10, seed=1),
        "lime": LIME(n_samples=12, segmentation="patches", patch_size=4, baseline="uniform", batch_size=10, seed=1),
        "kernel_shap_slic": KernelSHAP(n_samples=12, segmentation="slic", n_segments=6, batch_size=10, seed=1),  # counts differ per image
        "random": Random(seed=1),
        "expected_gradients": ExpectedGradients(n_samples=4, background=BACKGROUND, internal_batch_size=7, seed=1),
        "integrated_gradients_uniform": IntegratedGradients(n_steps=4, baseline="uniform", seed=1),  # only the baseline draws
        "occlusion_uniform": Occlusion(patch_size=4, stride=4, baseline="uniform", seed=1),
    }


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(9)
    blocks = torch.nn.functional.interpolate(torch.rand(N, 3, 4, 4, generator=gen), size=16)  # structure for superpixels
    x = blocks + 0.05 * torch.randn(N, 3, 16, 16, generator=gen)
    return relu_cnn(bias=True), x, torch.arange(N) % 3, torch.tensor([40, 3, 17, 8, 22, 91, 5, 60])


@pytest.mark.parametrize("name", list(explainers()))
def test_a_samples_map_depends_only_on_the_seed_and_its_id(name, data):
    model, x, t, ids = data
    explainer = explainers()[name]
    assert isinstance(explainer, PerSampleSeeded)
    whole = explainer(model, x, t, ids=ids)
    in_twos = torch.cat([explainer(model, x[i:i + 2], t[i:i + 2], ids=ids[i:i + 2]) for i in range(0, N, 2)])
    shard = torch.arange(N)[1::3]  # one of K = 3 shards: every third sample
    torch.testing.assert_close(in_twos, whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(explainer(model, x[shard], t[shard], ids=ids[shard]), whole[shard], rtol=1e-5, atol=1e-6)
    # other ids: other draws; without ids: the positions 0..N-1
    assert not torch.allclose(explainer(model, x, t, ids=ids + 1), whole)
    torch.testing.assert_close(explainer(model, x, t), explainer(model, x, t, ids=torch.arange(N)))


def test_the_random_control_differs_between_samples_and_batches():
    x, t = torch.zeros(4, 3, 8, 8), torch.zeros(4, dtype=torch.long)
    first, second = Random(seed=0)(None, x, t, ids=torch.arange(4)), Random(seed=0)(None, x, t, ids=torch.arange(4, 8))
    assert not torch.equal(first, second) and not torch.equal(first[0], first[1])  # before: the same maps every batch
    assert 0 < float(first.min()) and float(first.max()) < 1


def test_the_counter_based_draws_are_the_same_at_any_counter_split():
    ids = torch.tensor([2, 9])
    torch.testing.assert_close(uniform_at(3, 7, ids, torch.arange(10, 20)), uniform(3, 7, ids, (20,))[:, 10:])
    assert torch.equal(keys_at(3, 7, ids, torch.arange(5)), random_keys(3, 7, ids, 5))
    z = normal(3, 7, torch.arange(200), (500,))
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01


def test_expected_gradients_with_a_training_background_is_linear_models_closed_form():
    model = LinearModel(size=8, bias=True).eval()
    gen = torch.Generator().manual_seed(2)
    train = torch.randn(50, 3, 8, 8, generator=gen)
    x, t = torch.randn(4, 3, 8, 8, generator=gen), torch.tensor([0, 1, 2, 0])
    eg = ExpectedGradients(n_samples=6, background="train", n_background=6, seed=4)
    assert isinstance(eg, UsesTrainingImages)
    with pytest.raises(ValueError, match="background=train needs the training images"):
        eg(model, x, t)
    chosen = eg.training_indices(len(train))
    assert len(chosen) == 6 == len(chosen.unique()) and torch.equal(chosen, eg.training_indices(len(train)))
    eg.use_training_images(train[chosen])
    w = model.linear.weight[t].view(-1, 3, 8, 8)
    # every one of the 6 references is used once per sample (n_samples a multiple of n_background): exact
    torch.testing.assert_close(eg(model, x, t, ids=torch.tensor([5, 1, 7, 3])), w * (x - train[chosen].mean(0)), rtol=1e-4, atol=1e-5)
    # a constant background: exact for any n_samples
    flat = ExpectedGradients(n_samples=3, background="train", seed=4)
    flat.use_training_images(torch.full((10, 3, 8, 8), 0.5))
    torch.testing.assert_close(flat(model, x, t), w * (x - 0.5), rtol=1e-4, atol=1e-5)
    assert ExpectedGradients().training_indices(50) is None  # background=batch reads no training images
    with pytest.raises(ValueError, match="background must be one of batch, train"):
        ExpectedGradients(background="test")


def test_conservation_compares_with_the_uniform_baseline_the_map_was_drawn_with():
    model = LinearModel(size=8, bias=False).eval()
    x, t, ids = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 2]), torch.tensor([4, 9, 2])
    ig = IntegratedGradients(n_steps=2, baseline="uniform", seed=3)  # exact on a linear model
    maps = ig(model, x, t, ids=ids)
    torch.testing.assert_close(maps, model.linear.weight[t].view(-1, 3, 8, 8) * (x - ig.baseline(x, ids)))
    result = Conservation(bias_share=False)(model, x, t, maps, explainer=ig, indices=ids)
    assert float(result.scores.max()) < 1e-4
