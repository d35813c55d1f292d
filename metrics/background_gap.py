"""BG-gap: behavioural background reliance (Xiao, Engstrom, Ilyas & Madry, ICLR 2021).

Definition: BG-gap = accuracy(foreground on a background of its own class)
- accuracy(same foreground on a background of another class) ("Mixed-Same" minus
"Mixed-Rand" in the Backgrounds Challenge). Published: ResNet-50 7.3 points, VGG16-BN 10.2.

Per sample i (the i-th input is test image ``context["indices"][i]``, default i):
  scores_i = 1[correct on same_class_background] - 1[correct on other_class_background]
so the headline mean is the gap. Lower is better (less reliance on the background);
a model that ignores the background scores 0. Attributions are not used; the metric
sits beside the spurious-background ratio so a table shows whether the attribution-
based ratio agrees with what the model does. Needs a dataset with background-swapped
variants (``dataset.split(split, variant)``, e.g. SpuriousShapes); anything else raises.
Extras per sample: ``correct_same``, ``correct_other``, ``correct_original`` (on the
inputs as given) and ``correct_only_foreground`` (shape on the mean grey).
"""
from __future__ import annotations

import torch
from torch import nn

from methods.validation import check_int
from metrics._common import predictions, untouched
from metrics.result import MetricResult
from metrics.types import BackgroundVariants

SAME, OTHER = "same_class_background", "other_class_background"
NEEDED = (SAME, OTHER, "only_foreground")


def background_gap(correct_same: torch.Tensor, correct_other: torch.Tensor) -> torch.Tensor:
    """Per-sample BG-gap: 1[correct on a same-class background] - 1[correct on an other-class one].

    The one definition of the gap: its mean is the BG-gap of the metric and of the model
    summary the harness logs beside it (``test_accuracy/bg_gap``).
    """
    return correct_same.float() - correct_other.float()


class BackgroundGap:
    """BG-gap: accuracy on same-class minus other-class backgrounds, a behavioural test of reliance on it.

    Per sample 1[correct on a same-class background] - 1[correct on an other-class background], so the
    headline mean is the gap; lower is better (0: the background is ignored). Attributions are not used.
    ``needs`` is ``("background_variants",)``: the dataset (``dataset`` in the context) must offer
    background-swapped versions of its splits, e.g. SpuriousShapes; pre-flight checks it.

    Args:
        split (str, optional): The split the runner's inputs come from, ``train`` or ``test``, so that
            the context's ``indices`` pick the matching background-swapped images. Default: ``test``.
        batch_size (int, optional): Images per forward pass, >= 1. Default: 256.
    """

    needs: tuple[str, ...] = ("background_variants",)  # checked against the dataset in pre-flight
    def __init__(self, split: str = "test", batch_size: int = 256) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"background_gap.split must be one of train, test; got {split!r}")
        self.split = split
        self.batch_size = check_int("background_gap", "batch_size", batch_size)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model in one call (for the sweep's cost estimate): the inputs and their three background variants."""
        return 1 + len(NEEDED)

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor | None = None, **context) -> MetricResult:
        dataset = context.get("dataset")
        if not isinstance(dataset, BackgroundVariants) or not all(v in dataset.VARIANTS for v in NEEDED):
            raise ValueError(f"background_gap needs a dataset with background-swapped variants ({', '.join(NEEDED)}) "
                             f"in the context; got {type(dataset).__name__}")
        n = inputs.shape[0]
        idx = context.get("indices")
        idx = torch.arange(n) if idx is None else torch.as_tensor(idx).long().cpu().reshape(-1)
        if idx.numel() != n:
            raise ValueError(f"background_gap: context indices must hold one index per input; got {idx.numel()} for {n} inputs")
        splits = {v: dataset.samples(self.split, idx, v) for v in NEEDED}  # only this batch's samples of each variant
        labels = splits["same_class_background"].labels.to(inputs.device)
        given = context.get("labels")
        if given is not None and not torch.equal(torch.as_tensor(given, device=inputs.device).long().reshape(-1), labels):
            raise ValueError("background_gap: the labels in the context differ from the dataset's labels at context indices; pass indices=...")
        with untouched(model):   # the variants and the inputs in one stream of batches (batch_size images per pass)
            images = torch.cat([s.images.to(inputs) for s in splits.values()] + [inputs.detach()])
            hits = (predictions(model, images, self.batch_size) == labels.repeat(len(splits) + 1)).split(n)
        correct = dict(zip([*splits, "original"], hits))
        scores = background_gap(correct[SAME], correct[OTHER])
        extras = {"correct_same": correct["same_class_background"], "correct_other": correct["other_class_background"],
                  "correct_original": correct["original"], "correct_only_foreground": correct["only_foreground"]}
        return MetricResult(scores=scores.cpu(), higher_is_better=False, extras={k: v.float().cpu() for k, v in extras.items()})
