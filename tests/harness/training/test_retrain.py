"""The Retrainer behind ``context["retrain"]`` (ROAR): the run's architecture retrained on modified images, cached."""
import pytest
import torch

from harness.build import build
from harness.cache import model_key
from harness.training import Retrainer
from metrics import Retrain


def _retrainer(cfg, tmp_path, attribution_model="run-model-key"):
    dataset = build(cfg.dataset, "dataset", seed=cfg.seed)
    return Retrainer(cfg, dataset, dataset.split("train"), attribution_model, tmp_path, torch.device("cpu"))


@pytest.mark.slow
def test_retrained_models_are_cached_per_removal_and_need_no_images_when_cached(make_cfg, tmp_path):
    cfg = make_cfg()
    retrain = _retrainer(cfg, tmp_path)
    assert isinstance(retrain, Retrain)
    calls = []

    def images():
        calls.append(1)
        return torch.zeros_like(retrain.train_images)

    first = retrain(images, {"fraction": 0.5})
    second = retrain(images, {"fraction": 0.5})
    assert len(calls) == 1 and retrain.hits == 1          # the cached model is loaded; the images are never made again
    for (k, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), k
    retrain(images, {"fraction": 0.3})
    assert len(calls) == 2                                # another t: another model
    _retrainer(make_cfg("method=integrated_gradients"), tmp_path)(images, {"fraction": 0.5})
    assert len(calls) == 3                                # another method chose the pixels: another model
    _retrainer(cfg, tmp_path, attribution_model="other-model")(images, {"fraction": 0.5})
    assert len(calls) == 4                                # so did another model's attributions
    with pytest.raises(ValueError, match="modified training images have shape"):
        retrain(lambda: torch.zeros(3, 3, 16, 16), {"fraction": 0.9})


def test_a_removal_key_is_never_the_plain_model_key(make_cfg):
    cfg = make_cfg()
    plain = model_key(cfg.model, cfg.dataset, cfg.seed)
    assert model_key(cfg.model, cfg.dataset, cfg.seed, removal={"t": 0.1}) not in (plain, model_key(cfg.model, cfg.dataset, cfg.seed, removal={"t": 0.3}))
