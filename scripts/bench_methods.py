"""Time every attribution method against its Captum / zennit counterpart, side by side in one run.

    python scripts/bench_methods.py --quick                    # a few minutes on a 2-core CPU
    python scripts/bench_methods.py --model resnet18 --batch-size 16 --size 64 --device cuda

Both sides get the same model, batch, targets and settings (steps, samples,
windows, internal batch size); the table prints the best of ``--repeats`` timings
after one warm-up call, and ratio = ours / reference (< 1: ours is faster).
Methods without a counterpart in those libraries are timed alone.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.models import SmallCNN  # noqa: E402
from methods.cam import CAM, GradCAM, GradCAMpp, find_target_layer  # noqa: E402
from methods.controls import Random, Sobel  # noqa: E402
from methods.gradient import Gradient, GradientXInput, Sensitivity  # noqa: E402
from methods.guided_backprop import Deconvnet, GuidedBackprop  # noqa: E402
from methods.integrated_gradients import IntegratedGradients  # noqa: E402
from methods.kernel_shap import KernelSHAP  # noqa: E402
from methods.lime import LIME  # noqa: E402
from methods.lrp import LRP  # noqa: E402
from methods.occlusion import Occlusion  # noqa: E402
from methods.rise import RISE  # noqa: E402
from methods.saliency import Saliency  # noqa: E402
from methods.smoothgrad import SmoothGrad  # noqa: E402

warnings.filterwarnings("ignore")


def build_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "small_cnn":
        return SmallCNN()
    return getattr(torchvision.models, name)(weights=None, num_classes=4)


def cases(model, x, t, quick: bool):
    """(name, ours, reference or None) with equal settings on both sides."""
    import captum.attr as ca
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import EpsilonPlus
    from zennit.torchvision import ResNetCanonizer

    n = x.shape[0]
    steps, samples, draws, masks = (16, 128, 8, 256) if quick else (50, 512, 50, 2000)
    chunk = 256
    patch, stride = max(2, x.shape[-1] // 8), max(1, x.shape[-1] // 16)
    feature_mask = (torch.arange(x.shape[-2])[:, None] // patch * (x.shape[-1] // patch) + torch.arange(x.shape[-1])[None] // patch)
    feature_mask = feature_mask.expand(n, 1, *x.shape[-2:]).to(x.device)
    layer = find_target_layer(model, x)
    canon = [ResNetCanonizer()] if "resnet" in type(model).__name__.lower() else [SequentialMergeBatchNorm()]

    def zennit_lrp():
        xx = x.clone().requires_grad_(True)
        with EpsilonPlus(canonizers=canon).context(model) as m:
            out = m(xx)
            onehot = torch.zeros_like(out).scatter_(1, t.view(-1, 1), 1.0)
            return torch.autograd.grad(out, xx, onehot * out)[0]

    def captum_gradcam():
        maps = ca.LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=True)
        return ca.LayerAttribution.interpolate(maps, x.shape[-2:], interpolate_mode="bilinear")

    return [
        ("gradient", lambda: Gradient()(model, x, t), lambda: ca.Saliency(model).attribute(x, target=t, abs=False)),
        ("saliency", lambda: Saliency()(model, x, t), lambda: ca.Saliency(model).attribute(x, target=t)),
        ("sensitivity", lambda: Sensitivity()(model, x, t), None),
        ("gradient_x_input", lambda: GradientXInput()(model, x, t), lambda: ca.InputXGradient(model).attribute(x, target=t)),
        ("integrated_gradients", lambda: IntegratedGradients(n_steps=steps, internal_batch_size=chunk)(model, x, t),
         lambda: ca.IntegratedGradients(model).attribute(x, target=t, n_steps=steps, internal_batch_size=chunk)),
        ("smoothgrad", lambda: SmoothGrad(Saliency(), n_samples=draws, noise_level=0.15, batch_size=chunk)(model, x, t),
         lambda: ca.NoiseTunnel(ca.Saliency(model)).attribute(x, target=t, nt_type="smoothgrad", nt_samples=draws,
                                                                stdevs=0.15 * float(x.max() - x.min()),
                                                                nt_samples_batch_size=max(1, chunk // n))),
        ("guided_backprop", lambda: GuidedBackprop()(model, x, t), lambda: ca.GuidedBackprop(model).attribute(x, target=t)),
        ("deconvnet", lambda: Deconvnet()(model, x, t), lambda: ca.Deconvolution(model).attribute(x, target=t)),
        ("cam", lambda: CAM()(model, x, t), None),
        ("gradcam", lambda: GradCAM()(model, x, t), captum_gradcam),
        ("gradcam_pp", lambda: GradCAMpp()(model, x, t), None),
        ("lrp (epsilon_plus)", lambda: LRP(composite="epsilon_plus")(model, x, t), zennit_lrp),
        ("occlusion", lambda: Occlusion(patch_size=patch, stride=stride, batch_size=chunk)(model, x, t),
         lambda: ca.Occlusion(model).attribute(x, sliding_window_shapes=(x.shape[1], patch, patch),
                                               strides=(x.shape[1], stride, stride), target=t,
                                               perturbations_per_eval=max(1, chunk // n))),
        ("kernel_shap (patches)", lambda: KernelSHAP(n_samples=samples, segmentation="patches", patch_size=patch, batch_size=chunk)(model, x, t),
         lambda: ca.KernelShap(model).attribute(x, target=t, feature_mask=feature_mask, n_samples=samples,
                                                perturbations_per_eval=chunk)),
        ("lime (patches)", lambda: LIME(n_samples=samples, segmentation="patches", patch_size=patch, batch_size=chunk)(model, x, t),
         lambda: ca.Lime(model).attribute(x, target=t, feature_mask=feature_mask, n_samples=samples,
                                          perturbations_per_eval=chunk)),
        ("rise", lambda: RISE(n_masks=masks, cell_size=max(2, x.shape[-1] // 7), batch_size=chunk)(model, x, t), None),
        ("random", lambda: Random()(model, x, t), None),
        ("sobel", lambda: Sobel()(model, x, t), None),
    ]


def once(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def timed(fns, repeats: int, device: torch.device) -> list[float]:
    """Best time of each function; calls are interleaved so load spikes hit both sides alike."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        best = [min(b, once(fn, device)) for b, fn in zip(best, fns)]
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small_cnn", help="small_cnn or a torchvision model name (resnet18, vgg11_bn, ...)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per explainer call")
    parser.add_argument("--size", type=int, default=32, help="image height and width")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per side after one warm-up, interleaved; best is shown")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", nargs="*", help="method names to run (prefix match)")
    parser.add_argument("--quick", action="store_true", help="fewer steps, samples and masks (a few minutes on 2 CPU cores)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    model = build_model(args.model).to(device).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, 3, args.size, args.size, generator=gen).to(device)
    t = (torch.arange(args.batch_size) % 4).to(device)
    repeats = args.repeats
    print(f"model={args.model} batch={args.batch_size} size={args.size} device={device} threads={torch.get_num_threads()} "
          f"quick={args.quick} torch={torch.__version__}")
    print(f"{'method':<24}{'ours (s)':>10}{'reference (s)':>15}{'ratio':>8}  reference")
    for name, ours, reference in cases(model, x, t, args.quick):
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        if reference is None:
            (mine,) = timed([ours], repeats, device)
            print(f"{name:<24}{mine:>10.4f}{'-':>15}{'-':>8}  none in Captum/zennit")
            continue
        mine, ref = timed([ours, reference], repeats, device)
        source = "zennit" if name.startswith("lrp") else "captum"
        print(f"{name:<24}{mine:>10.4f}{ref:>15.4f}{mine / ref:>8.2f}  {source}", flush=True)


if __name__ == "__main__":
    main()
