"""The method x architecture matrix: every conf/method YAML on six architectures, random weights, 2 images.

Each cell is one of
- ``ok <err>``: a finite map whose relative error against its reference is <err> (Captum for the gradient
  family, occlusion and guided backprop; pytorch-grad-cam at the same layer for Grad-CAM/Grad-CAM++; CAM
  against hw x unrectified Grad-CAM; LRP: ``ok c / g``, LRP-0 on a bias-free copy of the model, c = |sum R - f_c(x)| / |f_c(x)|
  (conservation) and g its relative distance to gradient x input (equal unless gates are held constant); for the
  ``lrp attention=attnlrp`` row on the ViT, c = |sum R + absorbed - f_c(x)| / |f_c(x)| with ``(softmax a)`` the share
  a = |absorbed| / |f_c(x)| that softmax's Taylor bias terms took (AttnLRP is not conservative there);
  raw attention and rollout against torchvision's own attention weights);
- ``ok Σ g`` / ``warned Σ g``: the Captum difference/path classes (DeepLIFT, DeepLIFT-SHAP, GradientSHAP, IG), whose
  attributions sum to f_c(x) - f_c(x') to the relative gap g (the adapter's completeness check; refused above 1e-2 for
  DeepLIFT, warned above 5e-2 for IG/GradientSHAP and for DeepLIFT on max-pooling models);
- ``ok``: a finite map with no exact reference here (sampling methods, controls, the adapters, whose
  reference is the library itself);
- ``refused``: the method raised a one-line ValueError (the reason is listed below the table);
- ``MISMATCH <err>`` / ``ERROR <type>``: a wrong map or a crash (none should appear).

Rows are the YAMLs at their defaults, plus ``lrp attention=attnlrp`` and ``transformer_attribution variant=lrp``.
Weights are random (Linear layers redrawn, since torchvision zero-initialises the ViT head); for
mobilenet_v3_small and efficientnet_b0 the BatchNorm statistics are calibrated on the two images (``calibrate``),
since at torchvision's initialisation their logits are 3e-9 and 4e-14 and every absolute stabiliser decides
their cells (scaling the final layer would not fix that: the activations shrink inside the network).
Sampling methods run with small sample counts (the contract tests' settings) so the matrix takes minutes
on a CPU. Usage: ``python scripts/method_matrix.py [--methods gradcam,lrp] [--archs densenet121,vit_b_16]``.
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hydra.utils  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import conf  # noqa: E402
from methods.cam import GradCAM, find_target  # noqa: E402
from methods.captum_adapter import DISTRIBUTION, completeness_gap  # noqa: E402
from methods.gradient import GradientXInput  # noqa: E402
from methods.lrp import LRP  # noqa: E402

FAST = {"integrated_gradients": {"n_steps": 8}, "smoothgrad": {"n_samples": 4}, "kernel_shap": {"n_samples": 64},
        "lime": {"n_samples": 64}, "rise": {"n_masks": 64}, "captum": {"n_steps": 8}, "shapley_sampling": {"n_samples": 1, "patch_size": 16},
        "feature_ablation": {"n_segments": 4}, "ablationcam": {"ratio_channels_to_ablate": 0.1}, "deeplift_shap": {"n_baselines": 2},
        "occlusion": {"patch_size": 16, "stride": 16}, "expected_gradients": {"n_samples": 4}}


VARIANTS = {"lrp": ("attention", "attnlrp"), "transformer_attribution": ("variant", "lrp")}  # extra rows: an option != default


class FunctionalNet(nn.Module):
    """F.relu, an in-place F.relu, a residual add and torch.relu in ``forward``, functional pooling, a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2, self.conv3 = (nn.Conv2d(c, 16, 3, padding=1) for c in (3, 16, 16))
        self.head = nn.Linear(16, 4)
        self.relus = None  # the module-ReLU twin (see ``module_twin``) sets three nn.ReLU modules

    def forward(self, x):
        r1, r2, r3 = self.relus or (F.relu, lambda t: F.relu(t, inplace=True), torch.relu)
        x = r1(self.conv1(x))
        y = r2(self.conv2(x))
        return self.head(F.adaptive_avg_pool2d(r3(self.conv3(y) + x), 1).flatten(1))


def module_twin(arch, model):
    """The same function with its functional ReLUs as nn.ReLU modules, for references that hook modules only
    (Captum's GuidedBackprop/Deconvolution miss functional ReLUs; ours do not); None where there are none."""
    if arch == "functional_residual":
        twin = copy.deepcopy(model)
        twin.relus = nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.ReLU()])
        return twin.eval()
    if arch == "densenet121":
        return nn.Sequential(model.features, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), model.classifier).eval()
    return None


ARCHS = {
    "functional_residual": (FunctionalNet, 32),
    "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(num_classes=4), 64),
    "efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(num_classes=4), 64),
    "vit_b_16": (lambda: torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=12, num_heads=12, hidden_dim=768,
                                                              mlp_dim=3072, num_classes=4), 32),
    "convnext_tiny": (lambda: torchvision.models.convnext_tiny(num_classes=4), 64),
    "densenet121": (lambda: torchvision.models.densenet121(num_classes=4), 64),
}


CALIBRATED = ("mobilenet_v3_small", "efficientnet_b0")  # BatchNorm statistics set from the two images (see calibrate)


def calibrate(model, x):
    """Every BatchNorm's running mean and variance set to those of its input on ``x`` (one forward pass with only the
    BatchNorms in training mode, momentum 1). At torchvision's initialisation (BatchNorm the identity) the activations
    of MobileNetV3/EfficientNet shrink about tenfold per block (mean |activation| 6e-9 and 3e-14 at the last block,
    logits 3e-9 and 4e-14), so every absolute stabiliser (LRP's epsilon, Grad-CAM++'s, the completeness gap's floor)
    dominated their cells; scaling the final layer alone would not help, since the shrinking happens inside. With the
    statistics calibrated every BatchNorm output has unit variance on these images and the logits are O(1)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum, m.training = 1.0, True
    with torch.no_grad():
        model(x)
    for m in norms:
        m.momentum, m.training = 0.1, False
    return model


def build(name):
    torch.manual_seed(0)
    make, size = ARCHS[name]
    model = make().eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # torchvision zero-initialises some heads (ViT); random heads so no map is trivially zero
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / math.sqrt(m.weight.shape[1]))
    x = torch.randn(2, 3, size, size, generator=gen)
    if name in CALIBRATED:
        calibrate(model, x)
    return model, x, torch.tensor([1, 3])


def bias_free(model):
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for m in twin.modules():
            if getattr(m, "bias", None) is not None and isinstance(m.bias, torch.Tensor):
                m.bias.zero_()
            if getattr(m, "in_proj_bias", None) is not None:
                m.in_proj_bias.zero_()
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.zero_()
        for name, p in twin.named_parameters():  # a ViT's position embedding and class token act as biases
            if name.endswith(("pos_embedding", "class_token")):
                p.zero_()
    return twin.eval()


def rel(a, b):
    return ((a - b).norm() / b.norm().clamp(min=1e-30)).item()


def captum_reference(name, model, x, t, explainer):
    import captum.attr as ca
    if name == "gradient":
        return ca.Saliency(model).attribute(x, target=t, abs=False)
    if name == "saliency":
        return ca.Saliency(model).attribute(x, target=t)
    if name == "sensitivity":
        return ca.Saliency(model).attribute(x, target=t, abs=False).square()
    if name == "gradient_x_input":
        return ca.InputXGradient(model).attribute(x, target=t)
    if name == "integrated_gradients":
        return ca.IntegratedGradients(model).attribute(x, target=t, baselines=0.0, n_steps=explainer.n_steps, method="gausslegendre")
    if name == "guided_backprop":
        return ca.GuidedBackprop(model).attribute(x, target=t)
    if name == "deconvnet":
        return ca.Deconvolution(model).attribute(x, target=t)
    if name == "occlusion":
        p, s = explainer.patch_size, explainer.stride
        return ca.Occlusion(model).attribute(x, sliding_window_shapes=(3, p, p), strides=(3, s, s), baselines=0.0, target=t)[:, :1]
    return None


def cam_reference(name, model, x, t, arch=""):
    """pytorch-grad-cam at the detected layer (a module; for a functional map, the nn.ReLU of the model's
    module twin), on the un-normalised map before upsampling."""
    from pytorch_grad_cam import GradCAM as LibGradCAM
    from pytorch_grad_cam import GradCAMPlusPlus
    target = find_target(model, x)
    layer = None
    if " -> " in target.name:  # a functional map: the library hooks the same ReLU as a module of the twin
        twin = module_twin(arch, model)
        if twin is None:
            return None
        model, layer = twin, twin.relus[2] if arch == "functional_residual" else twin[1]
    cls = LibGradCAM if name == "gradcam" else GradCAMPlusPlus
    cam = cls(model=model, target_layers=[layer or model.get_submodule(target.name)],
              reshape_transform=lambda a: a[:, 1:].transpose(1, 2).reshape(*a.shape[::2], *target.grid) if a.dim() == 3 else a)
    try:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        cam(input_tensor=x.clone().requires_grad_(True), targets=[ClassifierOutputTarget(int(c)) for c in t])
        acts = torch.as_tensor(cam.activations_and_grads.activations[0])
        grads = torch.as_tensor(cam.activations_and_grads.gradients[0])
        if name == "gradcam":
            weights = torch.as_tensor(cam.get_cam_weights(x, None, None, acts.numpy(), grads.numpy())).view(*acts.shape[:2], 1, 1)
        else:  # the paper's weights from the library's A and G; its 1e-6 stabiliser is of the order of G^2 at random-weight scales
            g2 = grads.square()
            denom = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * g2 * grads
            alpha = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(denom))
            weights = (alpha * grads.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
    finally:
        cam.activations_and_grads.release()
    return (weights * acts).sum(1, keepdim=True).clamp(min=0)


def attention_reference(name, model, x):
    weights = []
    pre = [m.register_forward_pre_hook(lambda m, a, k: (a, {**k, "need_weights": True, "average_attn_weights": False}), with_kwargs=True)
           for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    post = [m.register_forward_hook(lambda m, a, o: weights.append(o[1])) for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in pre + post:
            h.remove()
    if name == "raw_attention":
        return weights[-1].mean(1)[:, 0, 1:]
    eye = torch.eye(weights[0].shape[-1])
    rollout = eye
    for a in weights:
        a = 0.5 * a.mean(1) + 0.5 * eye
        rollout = (a / a.sum(-1, keepdim=True)) @ rollout
    return rollout[:, 0, 1:]


def cell(name, explainer, model, x, t, arch=""):
    """(text, note) for one method on one model."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            maps = explainer(model, x, t)
        except ValueError as error:
            return "refused", str(error)
        except Exception as error:  # noqa: BLE001 - the matrix reports crashes instead of stopping
            return f"ERROR {type(error).__name__}", str(error).splitlines()[0][:200]
    notes = [str(w.message) for w in caught if "1x1" in str(w.message) or "f(baseline)" in str(w.message)]
    if not torch.isfinite(maps).all():
        return "MISMATCH non-finite", ""
    ref = None
    if getattr(explainer, "_checks_completeness", lambda: False)():  # Captum's difference/path classes: the checked gap
        base = explainer._baselines(x)
        gap = completeness_gap(model, x, t, maps, torch.zeros_like(x) if base is None else base, explainer.name in DISTRIBUTION)
        warned = any("f(baseline)" in n for n in notes)
        return f"{'warned' if warned else 'ok'} Σ {gap:.0e}", "; ".join(n.split(" only within")[0] + " only within tolerance" if warned else n
                                                                          for n in notes)
    if name in ("gradient", "saliency", "sensitivity", "gradient_x_input", "integrated_gradients", "guided_backprop", "deconvnet", "occlusion"):
        twin = module_twin(arch, model) if name in ("guided_backprop", "deconvnet") else None
        ref, ours = captum_reference(name, twin if twin is not None else model, x, t, explainer), maps
    elif name in ("gradcam", "gradcam_pp"):
        ref, ours = cam_reference(name, model, x, t, arch), explainer.layer_map(model, x, t)
    elif name == "cam":
        ours = explainer.layer_map(model, x, t)
        ref = GradCAM(relu=False).layer_map(model, x, t) * ours[0, 0].numel()
    elif name == "lrp":  # conservation of LRP-0 on a bias-free copy: |sum R - f_c(x)| / |f_c(x)|, and its distance to g x i
        twin = bias_free(model)
        lrp = LRP(composite="epsilon", epsilon=0.0, stabilizer=0.0, attention=explainer.attention)
        logit = twin(x).gather(1, t.view(-1, 1)).squeeze(1).detach()
        attends = any(isinstance(m, nn.MultiheadAttention) for m in twin.modules())
        if explainer.attention == "attnlrp" and attends:  # softmax's bias terms absorb a share a: sum R + absorbed = f_c(x)
            relevance, _, absorbed = lrp.relevance_and_attention(twin, x, t)
            absorbed = sum(absorbed)
        else:
            relevance, absorbed = lrp(twin, x, t), torch.zeros_like(logit)
        conservation = ((relevance.sum(dim=(1, 2, 3)) + absorbed - logit).abs() / logit.abs()).max().item()
        gxi = rel(relevance, GradientXInput()(twin, x, t))
        share = f" (softmax {(absorbed.abs() / logit.abs()).max().item():.0e})" if absorbed.abs().sum() > 0 else ""
        text = f"ok {conservation:.0e} / {gxi:.0e}{share}" if conservation < 1e-3 else f"MISMATCH {conservation:.1e}"
        return text, "; ".join(notes)
    elif name == "token_gradcam":
        ref, ours = GradCAM()(model, x, t), maps
    elif name in ("raw_attention", "attention_rollout"):
        ref, ours = attention_reference(name, model, x), explainer.token_map(model, x, t).flatten(1)
    if ref is None:
        return "ok", "; ".join(notes)
    err = rel(ours, ref)
    return (f"ok {err:.0e}" if err < 1e-3 else f"MISMATCH {err:.1e}"), "; ".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="", help="comma-separated method config names (default: all)")
    parser.add_argument("--archs", default=",".join(ARCHS), help="comma-separated architectures")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1: a shared machine)")
    parser.add_argument("--out", default="", help="also write the table here after each architecture (partial results survive)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    paths = sorted((Path(conf.__file__).parent / "method").glob("*.yaml"))
    wanted = set(filter(None, args.methods.split(",")))
    rows = [(p.stem, p, {}) for p in paths] + [(f"{stem} {key}={value}", paths_by[stem], {key: value})
                                               for stem, (key, value) in VARIANTS.items() for paths_by in [{p.stem: p for p in paths}]]
    rows = [r for r in rows if not wanted or r[1].stem in wanted]
    archs = args.archs.split(",")
    table = {row: {} for row, _, _ in rows}
    notes = {}
    start = time.perf_counter()
    for arch in archs:
        model, x, t = build(arch)
        for row, path, overrides in rows:
            cfg = OmegaConf.load(path)
            for key, value in {**FAST.get(path.stem, {}), **overrides}.items():
                cfg[key] = value
            explainer = hydra.utils.instantiate(cfg)
            began = time.perf_counter()
            text, note = cell(path.stem, explainer, model, x, t, arch)
            print(f"{arch} {row}: {text} ({time.perf_counter() - began:.1f} s)", file=sys.stderr, flush=True)
            table[row][arch] = text
            if note:
                notes.setdefault(note, []).append(f"{row}/{arch}")
        print(f"# {arch} done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
        if args.out:
            Path(args.out).write_text(render(table, [a for a in archs if a in next(iter(table.values()), {})], notes))
    print(render(table, archs, notes))


def render(table, archs, notes) -> str:
    lines = ["| method | " + " | ".join(archs) + " |", "|---|" + "---|" * len(archs)]
    lines += [f"| `{name}` | " + " | ".join(row.get(a, "") for a in archs) + " |" for name, row in table.items()]
    lines += [""] + [f"- {', '.join(where)}: {note}" for note, where in notes.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
