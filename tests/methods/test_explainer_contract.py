"""The explainer contract, checked for every YAML in conf/method/.

Each config instantiates on its own, returns (N, C|1, H, W) on SmallCNN, is
deterministic, and leaves the model exactly as it found it, also when the model
raises in the middle of an explanation.
"""
from __future__ import annotations

import copy
from pathlib import Path

import hydra.utils
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

import conf
from harness.models import SmallCNN
from tests.toy_models import FailingModel, assert_same_snapshot, model_snapshot

ATTENTION = {"raw_attention", "attention_rollout", "transformer_attribution", "token_gradcam"}  # ViTs only: tests/methods/test_attention.py
CONFIGS = sorted(p for p in (Path(conf.__file__).parent / "method").glob("*.yaml") if p.stem not in ATTENTION)
SEEDED = [p for p in CONFIGS if "seed" in OmegaConf.load(p)]
FAST = {  # smaller sample counts so the contract tests stay fast; the defaults are tested on their own below
    "integrated_gradients": {"n_steps": 8},
    "smoothgrad": {"n_samples": 4},
    "kernel_shap": {"n_samples": 64},
    "lime": {"n_samples": 64},
    "rise": {"n_masks": 64},
    "captum": {"n_steps": 8},
    "shapley_sampling": {"n_samples": 1, "patch_size": 16},
    "feature_ablation": {"n_segments": 4},
    "ablationcam": {"ratio_channels_to_ablate": 0.1},
    "deeplift_shap": {"n_baselines": 2},
}


OPTIONAL = {"methods.captum_adapter": "captum.attr", "methods.gradcam_library": "pytorch_grad_cam", "methods.zennit_adapter": "zennit"}


def needs_library(path: Path) -> None:
    """The adapters' libraries are optional for users: their configs are skipped where the library is missing."""
    module = OmegaConf.load(path)._target_.rsplit(".", 1)[0]
    if module in OPTIONAL:
        pytest.importorskip(OPTIONAL[module])


def load(path: Path, **overrides):
    needs_library(path)
    cfg = OmegaConf.load(path)
    for key, value in {**FAST.get(path.stem, {}), **overrides}.items():
        cfg[key] = value
    return hydra.utils.instantiate(cfg)


def batch(n: int = 3, size: int = 32):
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, size, size, generator=gen), torch.tensor([0, 1, 3, 2][:n])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SmallCNN().eval()


def subject(path: Path, model: nn.Module) -> nn.Module:
    """The model a config is checked on: SmallCNN, with average instead of max pooling for DeepLIFT, which refuses
    SmallCNN because Captum's max-pool rule misses f(x) - f(x') there (tests/methods/test_deeplift_maxpool.py)."""
    if path.stem not in ("deeplift", "deeplift_shap"):
        return model
    twin = copy.deepcopy(model)
    twin.features[4], twin.features[9] = nn.AvgPool2d(2), nn.AvgPool2d(2)
    return twin


def test_the_catalogue_is_complete():
    names = {p.stem for p in CONFIGS}
    expected = {"gradient", "saliency", "sensitivity", "gradient_x_input", "integrated_gradients", "smoothgrad",
                "guided_backprop", "deconvnet", "cam", "gradcam", "gradcam_pp", "lrp", "occlusion", "kernel_shap",
                "lime", "rise", "random", "sobel"}
    assert expected <= names, f"missing configs: {sorted(expected - names)}"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_yaml_instantiates_alone_and_returns_the_contract_shape(path, model):
    needs_library(path)
    model = subject(path, model)
    explainer = hydra.utils.instantiate(OmegaConf.load(path))  # defaults exactly as shipped
    assert callable(explainer)
    explainer = load(path)
    x, t = batch()
    first = explainer(model, x, t)
    second = load(path)(model, x, t)
    assert first.dim() == 4 and first.shape[0] == 3 and first.shape[2:] == x.shape[2:]
    assert first.shape[1] in (1, 3)
    assert torch.isfinite(first).all()
    assert torch.equal(first, second), "two instances with the same seed must agree"
    assert first.abs().sum() > 0, "an all-zero map"


@pytest.mark.parametrize("path", SEEDED, ids=lambda p: p.stem)
def test_a_null_seed_is_seed_zero(path, model):
    x, t = batch()
    a = load(path, seed=None)(model, x, t)
    assert torch.equal(a, load(path, seed=0)(model, x, t)), "a null seed must behave as seed 0"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_model_unchanged_after_success_and_after_an_exception(path, model):
    net = FailingModel(subject(path, model), fail_on=0)
    net.model.features[0].train()  # a mixed mode, frozen params and a user hook must all survive
    net.model.classifier.bias.requires_grad_(False)
    user_hook = net.model.features[2].register_forward_hook(lambda *args: None)
    try:
        before = model_snapshot(net)
        x, t = batch()
        load(path)(net, x, t)
        assert_same_snapshot(before, model_snapshot(net))
        raised = 0
        for fail_on in (1, 2):
            net.calls, net.fail_on = 0, fail_on
            try:
                load(path)(net, x, t)
            except RuntimeError as error:
                assert "deliberate failure" in str(error)
                raised += 1
            assert_same_snapshot(before, model_snapshot(net))
        if path.stem not in ("random", "sobel", "constant"):  # the controls never call the model
            assert raised >= 1
    finally:
        user_hook.remove()
        net.model.features[0].eval()
        net.model.classifier.bias.requires_grad_(True)


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.stem != "sobel"], ids=lambda p: p.stem)
def test_bad_argument_values_raise_one_line_value_errors(path):
    needs_library(path)
    cfg = OmegaConf.load(path)
    cls = hydra.utils.get_class(cfg._target_)
    args = hydra.utils.instantiate({k: v for k, v in cfg.items() if k != "_target_"})
    bad = {"batch_size": -1, "internal_batch_size": 0, "n_steps": -3, "n_samples": 0, "n_masks": 0, "variant": "x",
           "method": "simpson", "baseline": "black", "patch_size": 0, "layer": 3, "composite": "nope", "segmentation": "x",
           "score": "loss", "seed": "abc", "head_fusion": "median", "upsample": "area",
           "name": "NoSuchClass", "canonizer": "x", "value": float("nan")}
    keys = [k for k in bad if k in cfg]
    assert keys, f"{path.stem} validates none of its arguments"
    for key in keys:
        with pytest.raises(ValueError) as info:
            cls(**{**args, key: bad[key]})
        message = str(info.value)
        assert "\n" not in message and path.stem in message and key in message, message
