"""Class prototypes by activation maximisation: what input does the model find most like each class?

Definition (Erhan et al. 2009; Simonyan, Vedaldi & Zisserman, ICLR workshop 2014, sec. 2): the
prototype of class ``c`` is

    x*_c = argmax_x  f_c(x) - l2 * mean(x^2) - tv * TV(x),

with ``f_c`` the class's logit (the score before the softmax, as Simonyan et al. use, so that
the image is pushed towards ``c`` and not only away from the other classes), ``x`` in the
dataset's *normalised* space, ``mean(x^2)`` a small L2 penalty and ``TV`` the mean absolute
difference of neighbouring pixels (total variation, Mahendran & Vedaldi, CVPR 2015), which
suppresses the high-frequency patterns an unregularised ascent finds.

Conventions:

* every class starts from ``x = 0``, the dataset's mean image in normalised space, so the
  start carries no class;
* a fixed number of Adam steps on all classes at once (one batch of ``num_classes`` images);
  before each step the batch is rolled by a random shift of at most ``jitter`` pixels
  (Olah, Mordvintsev & Schubert, Distill 2017, "transformation robustness"), drawn from a
  generator seeded with ``seed``, so the result is deterministic for a seed on one device;
* after each step ``x`` is clamped to the normalised image of the pixel range [0, 1]
  (``low``/``high``), so every prototype is a valid image that can be shown as it is;
* gradients are taken with :func:`torch.autograd.grad` with respect to ``x`` only: the
  model's parameters and their ``.grad`` are left untouched; the model is used in eval mode.

:func:`model_of_run` rebuilds a logged run's trained model from the store and the model cache
(its ``config.yaml`` and the tag ``harness.model_key``); :func:`figure` draws one row of
prototypes per model, each titled with its class and the softmax probability the model gives it.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from torch import nn  # noqa: E402

from harness.build import build  # noqa: E402
from harness.cache import content_key, model_key, store  # noqa: E402
from harness.datasets import Dataset, FitsNormalisation  # noqa: E402
from harness.models import build_network, load_checkpoint, load_published, weights_source  # noqa: E402

MODEL_KEY_TAG = "harness.model_key"


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Per image (N,): mean absolute difference between vertically and horizontally neighbouring pixels."""
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
    return dy + dx


def class_prototypes(model: nn.Module, num_classes: int, shape: tuple[int, int, int], steps: int = 256, lr: float = 0.05,
                     l2: float = 0.05, tv: float = 0.5, jitter: int = 1, seed: int = 0,
                     low: torch.Tensor | float | None = None, high: torch.Tensor | float | None = None) -> torch.Tensor:
    """One prototype per class, ``(num_classes, *shape)`` in normalised space (see the module docstring).

    Args:
        model (nn.Module): Maps ``(N, *shape)`` normalised images to ``(N, num_classes)`` logits; used in eval mode.
        num_classes (int): Classes, one prototype each.
        shape (tuple of int): ``(channels, height, width)`` of one image.
        steps (int, optional): Adam steps. Default: 256.
        lr (float, optional): Adam's step size, in normalised units. Default: 0.05.
        l2 (float, optional): Weight of ``mean(x^2)``. Default: 0.05.
        tv (float, optional): Weight of the total variation. Default: 0.5.
        jitter (int, optional): Largest random shift (pixels, each axis) before each step; 0: none. Default: 1.
        seed (int, optional): Seeds the shifts. Default: 0.
        low, high (Tensor (C,) or float or None, optional): The normalised image of pixel values 0 and 1,
            per channel; ``x`` is clamped to them after each step. None: unbounded. Default: None.
    """
    if steps < 1 or lr <= 0 or l2 < 0 or tv < 0 or jitter < 0:
        raise ValueError(f"prototypes: steps >= 1, lr > 0, l2 >= 0, tv >= 0 and jitter >= 0 are required; got steps={steps}, lr={lr}, "
                         f"l2={l2}, tv={tv}, jitter={jitter}")
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    bound = lambda v: None if v is None else torch.as_tensor(v, dtype=dtype, device=device).reshape(1, -1, 1, 1)  # noqa: E731
    low, high = bound(low), bound(high)
    x = torch.zeros((num_classes, *shape), dtype=dtype, device=device, requires_grad=True)
    classes = torch.arange(num_classes, device=device)
    optimiser = torch.optim.Adam([x], lr=lr)
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            for _ in range(steps):
                dy, dx = (torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist() if jitter else (0, 0))
                shifted = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
                logits = model(shifted)
                objective = logits[classes, classes] - l2 * shifted.pow(2).flatten(1).mean(1) - tv * total_variation(shifted)
                (grad,) = torch.autograd.grad(-objective.sum(), x)
                optimiser.zero_grad(set_to_none=True)
                x.grad = grad
                optimiser.step()
                if low is not None and high is not None:
                    with torch.no_grad():
                        x.copy_(torch.maximum(torch.minimum(x, high), low))
    finally:
        model.train(was_training)
    return x.detach()


def _normalisation(cfg, dataset: Dataset, cache_dir: Path) -> None:
    """A dataset that fits its mean/std from training images gets the cached values (computed, not cached, when absent)."""
    if not isinstance(dataset, FitsNormalisation) or not dataset.normalisation_pending():
        return
    stats = store(cache_dir, "datasets", cfg.get("cache")).load(content_key(dataset.normalisation_identity()))
    mean, std = (stats["mean"], stats["std"]) if stats is not None else dataset.compute_normalisation()
    dataset.set_normalisation(mean, std)


def model_of_run(client: MlflowClient, run_id: str) -> tuple[nn.Module, Dataset]:
    """The trained model of a logged run and its dataset, rebuilt from the run's ``config.yaml`` and the model cache.

    The weights come from where the run took them: a checkpoint (``model.weights`` a path), torchvision's published
    weights, or the model cache entry named by the run's ``harness.model_key`` tag (runs logged before the tag: the
    key recomputed from the config, which finds the entry only while the code that keys it is unchanged). Nothing is
    trained: a missing entry is a one-line ValueError.
    """
    with tempfile.TemporaryDirectory() as tmp:
        try:
            cfg = OmegaConf.load(client.download_artifacts(run_id, "config.yaml", tmp))
        except Exception:
            raise ValueError(f"run {run_id}: no config.yaml artifact, so its model cannot be rebuilt") from None
    dataset = build(cfg.dataset, "dataset", seed=cfg.seed, contract=Dataset)
    cache_dir = Path(str(cfg.paths.cache)).expanduser().resolve()
    _normalisation(cfg, dataset, cache_dir)
    network = build_network(cfg.model, dataset)  # loads a checkpoint given as model.weights
    source = weights_source(cfg.model)
    if source is not None and source != "DEFAULT":
        return network.eval(), dataset
    if source == "DEFAULT" and load_published(cfg.model, network):
        return network.eval(), dataset
    tags = client.get_run(run_id).data.tags
    key = tags.get(MODEL_KEY_TAG) or model_key(cfg.model, cfg.dataset, cfg.seed)
    entry = store(cache_dir, "models", cfg.get("cache")).load(key, lambda path: load_checkpoint(network, path))
    if entry is None:
        raise ValueError(f"run {run_id}: its model is not in the cache ({cache_dir}/models/{key}.pt); "
                         "rerun the run (it retrains and caches the model) to draw its prototypes")
    return network.eval(), dataset


def prototypes_of_run(client: MlflowClient, run_id: str, device: torch.device | None = None, **options) -> dict:
    """Prototypes of one run's model: ``images`` (classes x H x W x C in [0, 1]), ``probability`` of its class, ``class_names``."""
    model, dataset = model_of_run(client, run_id)
    if device is not None:
        model = model.to(device)
    mean, std = dataset.mean.float(), dataset.std.float()
    found = class_prototypes(model, dataset.num_classes, (dataset.channels, dataset.image_size, dataset.image_size),
                             low=-mean / std, high=(1 - mean) / std, **options)
    with torch.no_grad():
        probability = torch.softmax(model(found), 1).diagonal()
    pixels = dataset.denormalise(found.cpu()).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return {"images": pixels, "probability": probability.cpu().numpy(), "class_names": list(dataset.class_names)}


def figure(panels: dict[str, dict]):
    """One row per model (the dict's keys label the rows), one column per class, each titled ``class p=...``."""
    n_rows = len(panels)
    n_cols = max(len(p["images"]) for p in panels.values())
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.25 * n_cols + 0.6, 1.4 * n_rows + 0.5), squeeze=False)
    for i, (label, panel) in enumerate(panels.items()):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(panel["images"]):
                ax.axis("off")
                continue
            image = panel["images"][j]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{panel['class_names'][j]}\np={panel['probability'][j]:.2f}", fontsize=6, pad=2)
        axes[i, 0].set_ylabel(label, fontsize=6)
    fig.suptitle("class prototypes (activation maximisation from the mean image; p: the model's softmax for that class)", fontsize=7)
    fig.tight_layout()
    return fig


def panels(report, max_models: int = 4, device: torch.device | None = None, **options) -> tuple[dict[str, dict], list[str]]:
    """Prototypes of each distinct (model, dataset, seed) of a report (its first run each, at most ``max_models``), and one line per model left out."""
    runs = report.collection.runs
    if runs.empty:
        return {}, []
    client = MlflowClient(report.collection.uri)
    found, missing = {}, []
    for row in runs.sort_values(["model", "dataset", "seed"]).drop_duplicates(["model", "dataset", "seed"]).head(max_models).itertuples():
        label = f"{row.model}\n{row.dataset}\nseed {row.seed}"
        try:
            found[label] = prototypes_of_run(client, row.run, device, seed=int(row.seed), **options)
        except ValueError as error:
            missing.append(f"prototypes of {row.model}, {row.dataset}, seed {row.seed}: {error}")
    return found, missing


def save(found: dict[str, dict], folder: Path) -> list[str]:
    """``prototypes.png``/``.pdf`` and the pixels as ``prototypes.npz``; the PNG name, or nothing when there are no panels."""
    if not found:
        return []
    fig = figure(found)
    for ext in ("png", "pdf"):
        fig.savefig(folder / f"prototypes.{ext}", dpi=100)
    plt.close(fig)
    np.savez_compressed(folder / "prototypes.npz", **{f"row{i}": p["images"] for i, p in enumerate(found.values())})
    return ["prototypes.png"]
