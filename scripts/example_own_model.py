"""Explain your own torchvision model on scikit-image's photographs from Python: three methods, two metrics, heat maps.

No download: the ResNet-18 has torchvision's seeded random initialisation (put your own
weights in with ``model.load_state_dict(torch.load("ckpt.pt"))``), and the photographs
ship inside scikit-image. With random weights the maps explain an untrained network,
so read the numbers as a demonstration of the API, not of the methods. Grad-CAM's map has
the resolution of the last convolution (``size / 32`` for a ResNet-18: 4x4 at 128 px, one
value, drawn as a flat square, at the test suite's 32 px).

    python scripts/example_own_model.py                      # 128 px, saves example_heatmaps.png
    python scripts/example_own_model.py --size 32 --out /tmp/maps.png --steps 4

Uses :func:`harness.explain` (each method's maps, computed once) and
:func:`harness.evaluate` (scores those maps; one row per method, metric and photo).
"""
from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import skimage.data  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402

import harness  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)   # the ImageNet statistics torchvision's models expect


def photographs(size: int) -> torch.Tensor:
    """scikit-image's photographs as (N, 3, size, size) pixels in [0, 1], centre-cropped and resized."""
    out = []
    for name in PHOTOS:
        pixels = torch.from_numpy(getattr(skimage.data, name)()[..., :3].copy()).permute(2, 0, 1).float() / 255
        side = min(pixels.shape[1:])
        top, left = (pixels.shape[1] - side) // 2, (pixels.shape[2] - side) // 2
        square = pixels[None, :, top:top + side, left:left + side]
        out.append(F.interpolate(square, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1))
    return torch.stack(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    parser.add_argument("--steps", type=int, default=16, help="integrated-gradients steps (default 16)")
    parser.add_argument("--out", default="example_heatmaps.png", help="where to save the heat maps")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()    # or: your own nn.Module and checkpoint
    pixels = photographs(args.size)
    inputs = (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)

    methods = {"saliency": None, "integrated_gradients": {"n_steps": args.steps}, "gradcam": None}   # names from conf/method
    maps = harness.explain(model, inputs, methods=methods, device="cpu")
    scores = harness.evaluate(model, inputs, methods=methods, metrics={"deletion": {"steps": 0.1}, "insertion": {"steps": 0.1}},
                              mean=MEAN, std=STD, attributions=maps, device="cpu")
    print(scores.pivot_table(index="method", columns="metric", values="score").round(4).to_string())

    fig, axes = plt.subplots(len(methods) + 1, len(PHOTOS), figsize=(2.2 * len(PHOTOS), 2.2 * (len(methods) + 1)), squeeze=False)
    for j, name in enumerate(PHOTOS):
        axes[0, j].imshow(pixels[j].permute(1, 2, 0).numpy())
        axes[0, j].set_title(name, fontsize=8)
        for i, method in enumerate(methods, start=1):
            heat = maps[method][j].detach().cpu().sum(0)
            axes[i, j].imshow(heat.numpy(), cmap="bwr", vmin=-float(heat.abs().max()), vmax=float(heat.abs().max()))
            axes[i, 0].set_ylabel(method, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"heat maps saved to {args.out}")


if __name__ == "__main__":
    main()
