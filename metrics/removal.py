"""Model scores with feature subsets removed: the engine of the correlation-type faithfulness metrics.

Used by faithfulness correlation (Bhatt et al. 2020), Sensitivity-N (Ancona et al. 2018),
faithfulness estimate (Alvarez-Melis & Jaakkola 2018) and monotonicity correlation
(Nguyen & Martinez 2020). Each compares the attribution mass of a set S of features with
the drop f(x) - f(x with S replaced by a substrate) of the model's target score.

Conventions (shared with :mod:`metrics.ablation`, whose substrates, scores, targets and
chunked evaluation this module reuses): substrates ``mean`` (zero in normalised space),
``zero`` (black), ``blur`` and ``noise``; scores ``logit`` / ``softmax`` / ``correct``
of the ``predicted`` / ``label`` / ``explained`` class. Removal sets are one of:

* random pixel subsets of a fixed size (all channels of a pixel together): for sample id
  i and draw j the subset is the ``size`` smallest of counter-based random keys seeded by
  (seed, i * draws + j), so it depends neither on the batch nor on the chunk;
* single features (pixels, patches or superpixels, :meth:`AblationCurve.feature_map`).

Every perturbed image is built on the fly inside :func:`metrics.chunked.evaluate_in_chunks`
(memory bounded by the chunk; one forward pass per perturbed image and one per clean image,
the forward-pass floor of these definitions).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from methods.validation import check_choice, check_int, check_seed
from metrics._common import POOLINGS, check_maps, no_progress, pool_channels, random_keys, sample_ids, untouched
from metrics.ablation import SCORES, TARGETS, AblationCurve, row_blocks
from metrics.chunked import memory_cap

REMOVAL_SUBSTRATES = ("mean", "zero", "blur", "noise")


class Removal:
    """Target scores of the model on copies of the inputs with chosen pixel sets replaced by a substrate.

    Args:
        name (str): The owning metric's name (for error messages and progress).
        substrate (str): ``mean``, ``zero``, ``blur`` or ``noise`` (as :class:`~metrics.ablation.AblationCurve`).
        score (str): ``logit``, ``softmax`` or ``correct``.
        target (str): ``predicted``, ``label`` or ``explained``.
        chunk_size (int or None): Perturbed images per forward pass; None: automatic.
        seed (int or None): Random subsets and the ``noise`` substrate.
    """

    def __init__(self, name: str, substrate: str, score: str, target: str, chunk_size: int | None, seed: int | None) -> None:
        check_choice(name, "substrate", substrate, REMOVAL_SUBSTRATES)
        check_choice(name, "score", score, SCORES)
        check_choice(name, "target", target, TARGETS)
        self.name, self.seed = name, check_seed(name, seed)
        self.curve = AblationCurve(mode="deletion", substrate=substrate, score=score, target=target, abpc=False,
                                   chunk_size=check_int(name, "chunk_size", chunk_size, allow_none=True), seed=self.seed, name=name)

    def masked_pooled(self, inputs: torch.Tensor, attributions: torch.Tensor, pooling: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(finite (N,) bool, channel-pooled map (N, H, W) with non-finite values zeroed)``."""
        maps = check_maps(self.name, inputs, attributions)
        return torch.isfinite(maps).flatten(1).all(1), pool_channels(torch.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0), pooling)

    def scores(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, context: dict, per_sample: int,
               removed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(clean (N,), perturbed (N, per_sample))`` target scores, float64 on the inputs' device.

        ``removed(sample, j)`` gives the (P, H * W) bool pixel sets removed in draw ``j`` of sample ``sample``
        (both (P,) long); it is called once per chunk."""
        c = self.curve
        inputs = inputs.detach()
        n, ch, h, w = inputs.shape
        ids = sample_ids(n, context, inputs.device)
        substrate = c.substrate_for(inputs, ids, context)
        progress = context.get("progress") or no_progress
        values = torch.empty(n * per_sample, dtype=torch.float64, device=inputs.device)
        with untouched(model), torch.no_grad():
            clean_logits = torch.cat([model(b).float() for b in inputs.split(c.chunk_size or 256)])
            cls = c._classes(clean_logits, targets, context, inputs.device)
            clean = c._value(clean_logits, cls).double()

            x, sub = inputs.reshape(n, 1, ch, h * w), substrate.reshape(n, 1, ch, h * w)
            buffers: list[torch.Tensor] = []

            def build(lo: int, hi: int) -> torch.Tensor:
                # x * keep + substrate * (1 - keep), keep = 1 - removed in {0, 1}: exact; built per block of rows
                # (metrics.ablation.row_blocks) by broadcasting each sample's image, into a buffer kept across chunks
                p = torch.arange(lo, hi, device=inputs.device)
                sample, j = p // per_sample, p % per_sample
                gone = removed(sample, j).to(inputs.dtype).view(-1, 1, h * w)
                keep = torch.sub(1, gone)
                if not buffers or buffers[0].shape[0] < hi - lo:
                    buffers[:] = [torch.empty(hi - lo, ch, h * w, dtype=inputs.dtype, device=inputs.device)]
                out = buffers[0][:hi - lo]
                for s0, s1, j0, j1, r0, r1 in row_blocks(lo, hi, per_sample):
                    o = out[r0:r1].view(s1 - s0, j1 - j0, ch, h * w)
                    torch.mul(x[s0:s1], keep[r0:r1].view(s1 - s0, j1 - j0, 1, h * w), out=o)
                    if c.substrate != "mean":  # mean: zero in normalised space
                        o.addcmul_(sub[s0:s1], gone[r0:r1].view(s1 - s0, j1 - j0, 1, h * w))
                return out.view(-1, ch, h, w)

            def read(lo: int, hi: int, logits: torch.Tensor) -> None:
                values[lo:hi] = c._value(logits.float(), cls[torch.arange(lo, hi, device=inputs.device) // per_sample]).double()

            n_params = sum(p.numel() for p in model.parameters())
            key = (type(model).__name__, n_params, (ch, h, w), str(inputs.device), inputs.dtype, False)
            c._evaluate(model, n * per_sample, build, read, key, memory_cap(inputs), inputs.device, progress)
        return clean, values.view(n, per_sample)

    def random_subsets(self, ids: torch.Tensor, draws: int, size: int, numel: int, stream: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """A ``removed`` callback: draw j of sample i removes the ``size`` pixels with the smallest seeded keys of (i, j)."""
        def removed(sample: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
            keys = random_keys(self.seed, stream, ids[sample] * draws + j, numel)
            idx = keys.topk(size, dim=1, largest=False).indices
            return torch.zeros(len(sample), numel, dtype=torch.bool, device=ids.device).scatter_(1, idx, True)
        return removed

    def random_subset_effects(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, pooled: torch.Tensor,
                              context: dict, draws: int, size: int, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(attribution sums (N, draws), score drops (N, draws))`` over ``draws`` random pixel subsets of ``size``."""
        n = inputs.shape[0]
        numel = pooled[0].numel()
        ids = sample_ids(n, context, inputs.device)
        subsets = self.random_subsets(ids, draws, size, numel, stream)
        flat = pooled.flatten(1).double()
        sums = torch.empty(n * draws, dtype=torch.float64, device=inputs.device)

        def removed(sample: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
            # each pair's subset is drawn once, for its image and for its attribution sum
            subset = subsets(sample, j)
            sums[sample * draws + j] = (flat.index_select(0, sample) * subset).sum(1)
            return subset

        clean, perturbed = self.scores(model, inputs, targets, context, draws, removed)
        return sums.view(n, draws), clean.view(-1, 1) - perturbed

    def feature_effects(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, pooled: torch.Tensor,
                        context: dict, fmap: torch.Tensor, n_feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(feature relevances (N, F), score drops (N, F))`` removing one feature at a time (F = max feature count;
        padding features of images with fewer features are NaN)."""
        n = inputs.shape[0]
        f_max = int(n_feat.max())
        flat_map = fmap.reshape(n, -1)

        def removed(sample: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
            return flat_map.index_select(0, sample) == j.view(-1, 1)

        clean, perturbed = self.scores(model, inputs, targets, context, f_max, removed)
        relevance = torch.zeros(n, f_max, dtype=torch.float64, device=inputs.device)
        relevance.scatter_add_(1, flat_map, pooled.reshape(n, -1).double())
        delta = clean.view(-1, 1) - perturbed
        padding = torch.arange(f_max, device=inputs.device).view(1, -1) >= n_feat.view(-1, 1)
        return relevance.masked_fill(padding, float("nan")), delta.masked_fill(padding, float("nan"))


class SingleFeatureRemoval:
    """The base of the metrics that remove one feature (pixel or square patch) at a time: arguments, cost and effects.

    Args:
        name (str): The metric's name (error messages).
        granularity (str): ``patch`` or ``pixel``.
        patch_size (int): Side of a square patch in pixels, >= 1.
        substrate, pooling, score, target, chunk_size, seed: as :class:`Removal` (``pooling``: ``sum``,
            ``abs_sum``, ``max`` or ``abs_max``).
    """

    needs: tuple[str, ...] = ()

    def setup(self, name: str, granularity: str, patch_size: int, substrate: str, pooling: str, score: str, target: str,
              chunk_size: int | None, seed: int | None) -> None:
        self.granularity = check_choice(name, "granularity", granularity, ("patch", "pixel"))
        self.patch_size = check_int(name, "patch_size", patch_size)
        self.pooling = check_choice(name, "pooling", pooling, POOLINGS)
        self.removal = Removal(name, substrate, score, target, chunk_size, seed)
        self.seed = self.removal.seed
        self.removal.curve.granularity, self.removal.curve.patch_size = self.granularity, self.patch_size

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): the clean one and one per feature."""
        _, h, w = shape
        p = 1 if self.granularity == "pixel" else self.patch_size
        return 1 + math.ceil(h / p) * math.ceil(w / p)

    def effects(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor,
                context: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(finite (N,), relevances (N, F), score drops (N, F))`` of removing each feature alone."""
        finite, pooled = self.removal.masked_pooled(inputs, attributions, self.pooling)
        fmap, n_feat = self.removal.curve.feature_map(inputs, context)
        relevance, drops = self.removal.feature_effects(model, inputs, targets, pooled, context, fmap, n_feat)
        return finite, relevance, drops
