"""Attention methods on a ViT built so that the answer is known, against torchvision's own attention weights,
and the explainer contract (shape, seeding, model left as found, refusal on CNNs)."""
from __future__ import annotations

from pathlib import Path

import hydra.utils
import pytest
import torch
import torchvision
from omegaconf import OmegaConf
from torch import nn

import conf
from harness.models import SmallCNN
from harness.models.small_vit import small_vit
from methods.attention import AttentionRollout, RawAttention, TransformerAttribution, recorded_attention
from methods.cam import GradCAM, TokenGradCAM
from tests.toy_models import assert_same_snapshot, model_snapshot

PATCH = 5  # the one bright patch, on the 4x4 grid of a 16 px image with 4 px patches


def pointing_vit() -> nn.Module:
    """Every head of both blocks attends from every token to the bright patch only.

    The patch embedding puts a patch's brightness on dimension 0; zero class token and positions; each
    block's query is a constant (W_q = 0, b_q = 20 on each head's first dimension) and its key the normalised
    token's dimension 0, so the attention logits are 10 * LN(x_j)[0]: about 24 for the bright patch, 0 or
    below for the rest. Values are the normalised tokens; out_proj writes 0.1 x their dimension 0 to
    dimensions 4-7 (so later blocks still single out the bright patch); the MLPs are zero; the head reads
    dimensions 4-7.
    """
    model = torchvision.models.VisionTransformer(image_size=16, patch_size=4, num_layers=2, num_heads=2, hidden_dim=8, mlp_dim=8,
                                                 num_classes=2)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.conv_proj.weight[0] = 1.0 / 48
        for block in model.encoder.layers:
            block.ln_1.weight.fill_(1.0)
            block.ln_2.weight.fill_(1.0)
            attn = block.self_attention
            w, b = attn.in_proj_weight, attn.in_proj_bias  # rows: q (0-7), k (8-15), v (16-23); heads of 4 dims
            b[0] = b[4] = 20.0
            w[8, 0] = w[12, 0] = 1.0
            w[16:24] = torch.eye(8)
            attn.out_proj.weight[4:8, 0] = 0.1
        model.encoder.ln.weight.fill_(1.0)
        model.heads.head.weight[0, 4:8] = 1.0
        model.heads.head.weight[1, 4:8] = -1.0
    return model.eval()


def bright_patch_image(n: int = 2) -> torch.Tensor:
    x = torch.zeros(n, 3, 16, 16)
    row, col = divmod(PATCH, 4)
    x[:, :, 4 * row:4 * row + 4, 4 * col:4 * col + 4] = 1.0
    return x


@pytest.mark.parametrize("method", [RawAttention(), AttentionRollout(), TransformerAttribution(), TransformerAttribution(variant="lrp"),
                                    RawAttention(head_fusion="max")], ids=["raw", "rollout", "chefer", "chefer_lrp", "raw_max"])
def test_every_attention_method_points_at_the_patch_every_head_attends_to(method):
    model, x = pointing_vit(), bright_patch_image()
    t = torch.tensor([0, 0])
    grid = method.token_map(model, x, t).flatten(1)
    assert grid.shape == (2, 16)
    assert (grid.argmax(1) == PATCH).all()
    others = torch.cat([grid[:, :PATCH], grid[:, PATCH + 1:]], 1)
    assert (others.abs().amax(1) < 1e-6 * grid[:, PATCH]).all(), grid
    if isinstance(method, RawAttention):
        torch.testing.assert_close(grid[:, PATCH], torch.ones(2), atol=1e-6, rtol=0)
    if isinstance(method, AttentionRollout):  # the class token's row of the rollout: half on itself, half on the patch
        torch.testing.assert_close(grid[:, PATCH], torch.full((2,), 0.75), atol=1e-5, rtol=0)
    maps = method(model, x, t)
    assert maps.shape == (2, 1, 16, 16) and torch.isfinite(maps).all()


def test_grad_cam_on_the_token_grid_points_at_the_patch_too():
    model, x = pointing_vit(), bright_patch_image()
    grid = GradCAM().layer_map(model, x, torch.tensor([0, 0])).flatten(1)
    assert (grid.argmax(1) == PATCH).all()
    assert torch.equal(TokenGradCAM()(model, x, torch.tensor([0, 0])), GradCAM()(model, x, torch.tensor([0, 0])))


def torchvision_attention(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Per-head attention weights as torchvision's MultiheadAttention returns them with need_weights=True."""
    found = []

    def pre(module, args, kwargs):
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    handles = [m.register_forward_pre_hook(pre, with_kwargs=True) for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    handles += [m.register_forward_hook(lambda m, a, o: found.append(o[1])) for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return found


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    model = small_vit(image_size=16, num_layers=2).eval()
    nn.init.normal_(model.heads.head.weight)  # torchvision zero-initialises the head
    return model, torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3)), torch.tensor([0, 2])


def test_raw_attention_and_rollout_match_torchvisions_attention_weights(vit):
    model, x, t = vit
    weights = torchvision_attention(model, x)
    torch.testing.assert_close(RawAttention().token_map(model, x, t).flatten(1), weights[-1].mean(1)[:, 0, 1:], rtol=1e-5, atol=1e-6)
    eye = torch.eye(weights[0].shape[-1])
    rollout = eye
    for a in weights:
        a = 0.5 * a.mean(1) + 0.5 * eye
        rollout = (a / a.sum(-1, keepdim=True)) @ rollout
    torch.testing.assert_close(AttentionRollout().token_map(model, x, t).flatten(1), rollout[:, 0, 1:], rtol=1e-5, atol=1e-6)


def test_transformer_attribution_of_one_block_is_its_positive_gradient_times_attention(vit):
    """One block: R = I + mean_h (dy/dA ⊙ A)^+, so the map is that row of the positive gradient x attention;
    the recorded A is torchvision's own attention weights, and its gradient sums to the derivative of y along
    A itself: sum_ij A_ij dy/dA_ij = d/ds y(A (1 + s)) at s = 0, checked by a central finite difference."""
    model, x, t = vit
    one = small_vit(image_size=16, num_layers=1).eval()
    nn.init.normal_(one.heads.head.weight)
    row = TransformerAttribution().token_map(one, x, t).flatten(1)
    assert (row >= 0).all() and row.sum() > 0
    with recorded_attention(one, "test") as maps:
        logits = one(x.clone().requires_grad_(True))
        (grad,) = torch.autograd.grad(logits.gather(1, t.view(-1, 1)).sum(), maps)
    expected = (grad * maps[0]).clamp(min=0).mean(1)[:, 0, 1:]
    torch.testing.assert_close(row, expected.detach())
    torch.testing.assert_close(maps[0].detach(), torchvision_attention(one, x)[0], rtol=1e-5, atol=1e-6)

    def scaled(s):  # y with every attention weight multiplied by (1 + s)
        def hook(module, args, kwargs, output):
            return (output[0] * (1 + s) - module.out_proj.bias * s, *output[1:])
        handle = one.encoder.layers[0].self_attention.register_forward_hook(hook, with_kwargs=True)
        try:
            with torch.no_grad():
                return one(x).gather(1, t.view(-1, 1)).squeeze(1)
        finally:
            handle.remove()

    h = 1e-3
    numeric = (scaled(h) - scaled(-h)) / (2 * h)
    torch.testing.assert_close((grad * maps[0]).sum(dim=(1, 2, 3)), numeric, rtol=2e-2, atol=1e-4)


class OneBlock(nn.Module):
    """Bias-free: 4 px patches embedded to 8 dims, a random class token, one 2-head self-attention, and a linear head
    on the class token's output, with no residual, LayerNorm or MLP, so the relevances are known in closed form."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4, bias=False)
        self.class_token = nn.Parameter(torch.randn(1, 1, 8))
        self.attention = nn.MultiheadAttention(8, 2, bias=False, batch_first=True)
        self.head = nn.Linear(8, 3, bias=False)

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.class_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        return self.head(self.attention(tokens, tokens, tokens, need_weights=False)[0][:, 0])


def test_lrp_variant_weighs_the_gradient_by_the_attention_relevance_and_keeps_what_the_gradient_variant_drops(monkeypatch):
    """Chefer et al. 2021 (CVPR): mean_h (dy/dA ⊙ R^(A))^+. On the one-block model the epsilon rules through the head
    and out_proj and the uniform rule on A v give, from R = e_c at the output, R^(A) = A ⊙ dy/dA / (2 y), so the map is
    mean_h (A (dy/dA)^2)[0, 1:] / (2 y) for y > 0 (exactly with epsilon = 0; the default 1e-6 moves it by 1e-3): a
    patch whose attention lowers y (dy/dA < 0 on every head) is zero for the gradient variant, (dy/dA ⊙ A)^+, but
    weighted by the LRP variant (the product of two negative factors)."""
    import functools

    import methods.attention
    from methods.lrp import LRP

    torch.manual_seed(1)
    model = OneBlock().eval()
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    t = model(x).argmax(1)  # positive logits (checked below): the formula's y > 0
    default = TransformerAttribution(variant="lrp").token_map(model, x, t).flatten(1)
    monkeypatch.setattr(methods.attention, "LRP", functools.partial(LRP, epsilon=0.0, stabilizer=0.0))
    lrp = TransformerAttribution(variant="lrp").token_map(model, x, t).flatten(1)
    torch.testing.assert_close(default, lrp, rtol=1e-2, atol=1e-9)
    gradient = TransformerAttribution().token_map(model, x, t).flatten(1)
    with recorded_attention(model, "test") as maps:
        y = model(x.clone().requires_grad_(True)).gather(1, t.view(-1, 1)).squeeze(1)
        (grad,) = torch.autograd.grad(y.sum(), maps)
    assert (y > 0).all()
    a, y = maps[0].detach(), y.detach().view(-1, 1)
    torch.testing.assert_close(lrp, (a * grad.square()).mean(1)[:, 0, 1:] / (2 * y), rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(gradient, (a * grad).clamp(min=0).mean(1)[:, 0, 1:])
    dropped = (grad[:, :, 0, 1:] < 0).all(dim=1)
    assert dropped.any() and (gradient[dropped] == 0).all() and (lrp[dropped] > 0).all()
    with pytest.raises(ValueError, match="variant"):
        TransformerAttribution(variant="attnlrp")


ATTENTION_CONFIGS = [Path(conf.__file__).parent / "method" / f"{n}.yaml" for n in ("raw_attention", "attention_rollout", "transformer_attribution",
                                                                                          "token_gradcam")]


@pytest.mark.parametrize("path, overrides", [(p, {}) for p in ATTENTION_CONFIGS] + [(ATTENTION_CONFIGS[2], {"variant": "lrp"})],
                         ids=[p.stem for p in ATTENTION_CONFIGS] + ["transformer_attribution_lrp"])
def test_attention_configs_keep_the_contract_and_refuse_cnns(path, overrides, vit):
    model, x, t = vit
    explainer = hydra.utils.instantiate(OmegaConf.merge(OmegaConf.load(path), overrides))
    model.encoder.layers[0].train()
    before = model_snapshot(model)
    first = explainer(model, x, t)
    assert_same_snapshot(before, model_snapshot(model))
    model.encoder.layers[0].eval()
    assert first.shape == (2, 1, 16, 16) and torch.isfinite(first).all() and first.abs().sum() > 0
    assert torch.equal(first, explainer(model, x, t))
    with pytest.raises(ValueError, match="nn.MultiheadAttention") as info:
        explainer(SmallCNN().eval(), torch.randn(1, 3, 16, 16), torch.tensor([0]))
    assert "\n" not in str(info.value) and path.stem in str(info.value)
    with pytest.raises(ValueError, match="upsample"):
        type(explainer)(upsample="area")


@pytest.mark.slow
def test_attention_rollout_and_token_grad_cam_run_end_to_end_on_small_vit(make_cfg):
    """``python -m harness model=small_vit method=attention_rollout`` (tiny), and Grad-CAM logging its layer."""
    from mlflow.tracking import MlflowClient

    from harness.runner import run
    tiny = ("model=small_vit", "model.network.num_layers=1", "model.network.hidden_dim=16", "model.network.mlp_dim=16", "metric=[deletion]")
    outcome = run(make_cfg(*tiny, "method=attention_rollout"))
    assert MlflowClient().get_run(outcome.run_id).data.metrics["deletion"] == pytest.approx(outcome.headline()["deletion"])
    logged = MlflowClient().get_run(run(make_cfg(*tiny, "method=gradcam")).run_id)
    assert logged.data.params["method_layer"] == "encoder.layers.encoder_layer_0.ln_1"
