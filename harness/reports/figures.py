"""Figures logged with each run: attribution heat maps and ablation curves (matplotlib, Agg backend)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from metrics import MetricResult  # noqa: E402


def heatmaps(pixels: torch.Tensor, attributions: torch.Tensor, masks: torch.Tensor | None, titles: list[str]):
    """Row 1: images (in [0, 1]) with the object outline; row 2: channel-summed attributions (symmetric colour scale)."""
    n = pixels.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(1.8 * n, 3.8), squeeze=False)
    maps = attributions.detach().float().sum(1).cpu()
    for i in range(n):
        image = pixels[i].detach().cpu().permute(1, 2, 0).clamp(0, 1)
        axes[0, i].imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray")
        axes[0, i].set_title(titles[i], fontsize=7)
        limit = float(maps[i].abs().max()) or 1.0
        axes[1, i].imshow(maps[i], cmap="bwr", vmin=-limit, vmax=limit)
        if masks is not None:
            for row in (0, 1):
                axes[row, i].contour(masks[i, 0].cpu().float(), levels=[0.5], colors="k", linewidths=0.6)
        for row in (0, 1):
            axes[row, i].axis("off")
    fig.tight_layout()
    return fig


def curves(name: str, result: MetricResult):
    fig, ax = plt.subplots(figsize=(4, 3))
    x, c = result.curve_x.cpu(), result.curves.cpu()
    for row in c[:32]:
        ax.plot(x, row, color="0.8", linewidth=0.5)
    ax.plot(x, c.mean(0), color="C0", linewidth=2, label=f"mean (AUC {result.aggregate():.3f})")
    ax.set_xlabel("fraction of features changed")
    ax.set_ylabel("score")
    ax.set_title(name)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
