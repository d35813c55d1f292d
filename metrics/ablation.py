"""The ablation-curve engine shared by deletion, insertion and ROAD.

Reference: Petsiuk, Das & Saenko, "RISE", BMVC 2018 (deletion/insertion); Samek et al.,
IEEE TNNLS 2017 (MoRF/LeRF region perturbation); Rong et al., ICML 2022 (ROAD imputation).

Definition and conventions
--------------------------
* Features: pixels (all channels together), square ``patch_size`` patches, or SLIC
  superpixels (scikit-image, computed on the de-normalised image). A feature's
  relevance is the sum over its pixels of the channel-pooled attribution
  (``pooling``: sum (default), abs_sum, max, abs_max over channels).
* Order: MoRF (most relevant first, default) or LeRF, relevances compared in float32;
  ties are broken by a seeded random order that depends only on (seed, sample id),
  not on the batch.
* Step k changes the first ``count_k`` features of that order. For pixels and
  patches (equal feature counts F) ``step = max(1, round(steps * F))`` features per
  step, K = ceil(F / step) steps, ``count_k = min(k * step, F)`` and the x-axis is
  ``count_k / F`` (RISE's convention). For superpixels (F varies per image) the
  x-axis is ``min(1, k * steps)``, k = 0..ceil(1 / steps), and ``count_k`` rounds
  x_k * F_i. ``fractions`` (a list) replaces this grid by explicit x values.
  Curves include both end points (unless ``fractions`` leaves them out).
* deletion: start from x, replace changed features by the substrate; insertion:
  start from the substrate, restore changed features from x.
* Substrates (inputs are normalised): ``mean`` (zero in normalised space: the
  dataset mean, RISE's deletion default), ``zero`` (black in pixel space), ``blur``
  (Gaussian, sigma = max(``blur_sigma`` x image size, ``blur_min_sigma`` px), kernel
  radius round(sigma), below the image side: 11 px at sigma 5 / 224 px as RISE's
  insertion; the pixel floor keeps small images from starting at almost the image
  itself: 0.0223 x 16 px is 0.36 px, a blur that keeps the class), ``noise`` (seeded U[0, 1] pixel noise)
  and ``road`` (ROAD's noisy linear imputation of the removed pixels from the kept
  ones, re-solved for every step; see :mod:`metrics.road_imputation`).
* Score: softmax probability (default), logit, or ``correct`` (1 if the perturbed
  image is still classified as the target) of the target class: the class predicted
  on the clean input (default), the label, or the explained target.
* Per-sample score: trapezoid area under the curve on its x-axis (for an x-axis on
  [0, 1] this is RISE's (sum p_i - p_0/2 - p_n/2)/n), so areas compare across step
  counts. Deletion-MoRF: lower is better; insertion-MoRF: higher is better; LeRF flips.
* ``abpc``: also run the opposite order and log per sample ``auc_morf``,
  ``auc_lerf`` and ``abpc`` = area between the LeRF and MoRF curves, signed so that
  positive is good (deletion: AUC_LeRF - AUC_MoRF; insertion: AUC_MoRF - AUC_LeRF).

Evaluation
----------
Every perturbed image of every step of every sample is built on the fly and pushed
through the model in chunks; images identical to the clean input (deletion at
count 0, insertion at count F) reuse the clean forward pass, and the all-substrate image
of the ``mean`` and ``zero`` substrates (the same for every sample) is passed once, so one
order costs at most N (K + 1) forward passes (N K + 1 with those substrates). With pixels or patches
(every sample evaluates the same steps) a chunk's images are built as at most three broadcast blocks
(a sample's image against its steps' 0/1 masks) into buffers kept across chunks; the ranks of the
last few (maps, order, seed) are remembered, so deletion and insertion of one batch sort once.
``chunk_size: null`` tunes the chunk size for speed (:mod:`metrics.chunked`) and caches it
per (model class and size, image shape, device). Scores do not depend on the chunk
size or batch composition up to the model's own float non-associativity (~1e-7).
Samples with non-finite attributions get NaN (counted in ``MetricResult.dropped``, with a warning).

Start point check (insertion): the extras ``start_score`` and ``clean_score`` are the
target score of the all-substrate start image and of the clean image; when the mean
start score is at least ``START_WARNING`` (0.8) of the mean clean score the substrate
still carries the class, the curve starts near its end and insertion cannot tell
methods apart, so a one-line warning says so.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from methods.validation import check_bool, check_choice, check_int, check_positive, check_seed
from metrics._common import POOLINGS, check_maps, no_progress, normal, pool_channels, random_keys, sample_ids, uniform, untouched
from metrics.chunked import evaluate_in_chunks, memory_cap
from metrics.result import MetricResult, undefined
from metrics.road_imputation import NOISE_STD, noisy_linear_impute
from metrics.types import Progress

SUBSTRATES = ("mean", "zero", "blur", "noise", "road")
SHARED_SUBSTRATES = ("mean", "zero")   # substrates that are one image for every sample
GRANULARITIES = ("pixel", "patch", "superpixel")
SCORES = ("softmax", "logit", "correct")
TARGETS = ("predicted", "label", "explained")
ORDERS = ("morf", "lerf")
RANK_MEMORY = 4       # rank orders kept in RANKS (one batch's deletion + insertion, both orders)
RANKS: list[tuple] = []   # the last rank orders sorted: (settings, pooled maps, feature map, counts, ids, ranks)
START_WARNING = 0.8   # insertion warns when the mean start score reaches this fraction of the mean clean score


def fixed_mode(owner: str, mode: str, settings: dict) -> str:
    """``mode`` for a curve metric whose order is its definition (deletion, insertion, ...): a ``mode`` in
    ``settings`` is removed, and refused in one line if it is another one."""
    given = settings.pop("mode", mode)
    if given != mode:
        raise ValueError(f"{owner}.mode is always {mode!r} (it is what the metric is); got {given!r}: use metric=deletion or metric=insertion")
    return mode


def row_blocks(lo: int, hi: int, m: int) -> list[tuple[int, int, int, int, int, int]]:
    """Rows [lo, hi) of a sample-major (sample, draw) grid with ``m`` draws per sample (row p: sample p // m, draw
    p % m) as at most three rectangles ``(s0, s1, j0, j1, r0, r1)``: samples s0..s1-1 x draws j0..j1-1, rows
    r0..r1-1 of the chunk (the rest of one sample, whole samples, the start of one). A chunk's images can then be
    built by broadcasting each sample's image against its draws' masks, without gathering images per row."""
    (s0, j0), (s1, j1) = divmod(lo, m), divmod(hi, m)
    if s0 == s1:
        blocks = [(s0, s0 + 1, j0, j1)]
    else:
        first = s0 + (j0 > 0)
        blocks = [(s0, s0 + 1, j0, m)] * (j0 > 0) + [(first, s1, 0, m)] * (s1 > first) + [(s1, s1 + 1, 0, j1)] * (j1 > 0)
    out, row = [], 0
    for sa, sb, ja, jb in blocks:
        rows = (sb - sa) * (jb - ja)
        out.append((sa, sb, ja, jb, row, row + rows))
        row += rows
    return out


class AblationCurve:
    """Deletion (``mode='deletion'``) or insertion (``mode='insertion'``) curves and their AUC.

    The engine behind :class:`metrics.Deletion`, :class:`metrics.Insertion` and :class:`metrics.ROAD`:
    features are changed in relevance order, step by step, and the model's score of the target class
    is recorded after each step. ``scores`` is the trapezoid area under the ``order`` curve
    (deletion-MoRF: lower is better; insertion-MoRF: higher is better; LeRF flips both); headline:
    mean. The conventions are in the module docstring. ``needs`` is empty: any image dataset will do
    (``target: label`` reads the labels the harness puts in the context).

    Args:
        mode (str): ``deletion`` (start from the image, replace changed features by the substrate) or
            ``insertion`` (start from the substrate, restore changed features from the image). Required;
            :class:`~metrics.Deletion` and :class:`~metrics.Insertion` set it.
        steps (float, optional): Fraction of the features changed per step, in (0, 1]; not used when
            ``fractions`` is given. Default: 0.05.
        substrate (str, optional): What removed features become: ``mean`` (zero in normalised space,
            as RISE's deletion), ``zero`` (black), ``blur`` (Gaussian, see ``blur_sigma``), ``noise``
            (seeded U[0, 1] pixel noise) or ``road`` (ROAD's noisy linear imputation, re-solved every
            step). Default: ``mean`` (:class:`~metrics.Insertion`: ``blur``).
        granularity (str, optional): The features ranked and changed: ``pixel`` (all channels
            together), ``patch`` (squares of ``patch_size``) or ``superpixel`` (SLIC, scikit-image).
            Default: ``pixel``.
        patch_size (int, optional): Side of a square patch in pixels, >= 1 (``granularity=patch``).
            Default: 4.
        n_segments (int, optional): Approximate number of SLIC superpixels, >= 1
            (``granularity=superpixel``). Default: 64.
        compactness (float, optional): SLIC compactness, > 0 (``granularity=superpixel``).
            Default: 10.0.
        pooling (str, optional): Channel pooling of the attributions before features are ranked:
            ``sum``, ``abs_sum``, ``max`` or ``abs_max``. Default: ``sum``.
        score (str, optional): What is recorded for the target class: ``softmax`` (probability),
            ``logit`` or ``correct`` (1 if still classified as the target). Default: ``softmax``.
        target (str, optional): The class scored: ``predicted`` (on the clean input), ``label`` (needs
            ``labels`` in the context) or ``explained`` (the targets the maps explain).
            Default: ``predicted``.
        order (str, optional): The order whose curve gives ``scores``: ``morf`` (most relevant first)
            or ``lerf`` (least relevant first). Default: ``morf``.
        abpc (bool, optional): Also run the opposite order and log ``auc_morf``, ``auc_lerf`` and
            ``abpc`` (the area between the curves, positive is good); doubles the cost. Default: True.
        blur_sigma (float, optional): Sigma of the ``blur`` substrate as a fraction of the image's
            larger side, > 0 (5 px at 224 px, as RISE). Default: 0.0223.
        blur_min_sigma (float, optional): Smallest sigma of the ``blur`` substrate in pixels, >= 0
            (0: no floor), so that small images are blurred beyond recognition too (the fraction alone
            gives 0.36 px at 16 px). Default: 4.0.
        road_noise (float, optional): Std of the ``road`` substrate's imputation noise on the [0, 1]
            pixel scale, >= 0 (0: no noise). Default: 0.01.
        fractions (list of float or None, optional): Explicit x-axis, an increasing list of fractions
            in [0, 1] that replaces the ``steps`` grid; null: use ``steps``. Default: None.
        chunk_size (int or None, optional): Perturbed images per forward pass, >= 1; null: automatic
            (tuned for speed, memory-capped, cached per model, image shape and device). Scores do not
            depend on it beyond float rounding. Default: None.
        seed (int or None, optional): Tie-breaking of equal relevances and the ``noise`` and ``road``
            draws; null takes the run's seed (the harness fills it in; 0 outside it). Default: None.
        name (str or None, optional): The name error messages use; None: ``mode``. Default: None.
    """

    needs: tuple[str, ...] = ()
    mean_relevance = False   # rank features by the sum of their pixels' relevances (True: the mean, as IROF)

    def __init__(
        self,
        mode: str,
        steps: float = 0.05,
        substrate: str = "mean",
        granularity: str = "pixel",
        patch_size: int = 4,
        n_segments: int = 64,
        compactness: float = 10.0,
        pooling: str = "sum",
        score: str = "softmax",
        target: str = "predicted",
        order: str = "morf",
        abpc: bool = True,
        blur_sigma: float = 0.0223,
        blur_min_sigma: float = 4.0,
        road_noise: float = NOISE_STD,
        fractions: list[float] | None = None,
        chunk_size: int | None = None,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name = name or mode
        self.mode = check_choice(name, "mode", mode, ("deletion", "insertion"))
        if isinstance(steps, bool) or not isinstance(steps, (int, float)) or not 0 < steps <= 1:
            raise ValueError(f"{name}.steps must be in (0, 1] (the fraction of features changed per step); got {steps}")
        self.steps = float(steps)
        self.substrate = check_choice(name, "substrate", substrate, SUBSTRATES)
        self.granularity = check_choice(name, "granularity", granularity, GRANULARITIES)
        self.patch_size = check_int(name, "patch_size", patch_size)
        self.n_segments = check_int(name, "n_segments", n_segments)
        self.compactness = check_positive(name, "compactness", compactness)
        self.pooling = check_choice(name, "pooling", pooling, POOLINGS)
        self.score = check_choice(name, "score", score, SCORES)
        self.target = check_choice(name, "target", target, TARGETS)
        self.order = check_choice(name, "order", order, ORDERS)
        self.abpc = check_bool(name, "abpc", abpc)
        self.blur_sigma = check_positive(name, "blur_sigma", blur_sigma)
        if isinstance(blur_min_sigma, bool) or not isinstance(blur_min_sigma, (int, float)) or blur_min_sigma < 0:
            raise ValueError(f"{name}.blur_min_sigma must be a number >= 0 (pixels; 0: no floor); got {blur_min_sigma!r}")
        self.blur_min_sigma = float(blur_min_sigma)
        if isinstance(road_noise, bool) or not isinstance(road_noise, (int, float)) or road_noise < 0:
            raise ValueError(f"{name}.road_noise must be a number >= 0 (std on the [0, 1] pixel scale); got {road_noise!r}")
        self.road_noise = float(road_noise)
        if fractions is not None:
            fr = [float(f) for f in fractions]
            if not fr or any(not 0 <= f <= 1 for f in fr) or any(b <= a for a, b in zip(fr, fr[1:])):
                raise ValueError(f"{name}.fractions must be a non-empty increasing list of values in [0, 1]; got {list(fractions)}")
            fractions = fr
        self.fractions = fractions
        self.chunk_size = check_int(name, "chunk_size", chunk_size, allow_none=True)
        self.seed = check_seed(name, seed)

    # -- features and their order ----------------------------------------------------------
    def feature_map(self, inputs: torch.Tensor, context: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, H, W) long feature index of each pixel, and the number of features (N,) of each image."""
        n, _, height, width = inputs.shape
        dev = inputs.device
        if self.granularity == "pixel":
            fmap = torch.arange(height * width, device=dev).view(1, height, width).expand(n, -1, -1)
            return fmap, torch.full((n,), height * width, device=dev)
        if self.granularity == "patch":
            p = self.patch_size
            rows, cols = torch.arange(height, device=dev) // p, torch.arange(width, device=dev) // p
            n_cols = math.ceil(width / p)
            fmap = (rows.view(-1, 1) * n_cols + cols.view(1, -1)).expand(n, -1, -1)
            return fmap, torch.full((n,), math.ceil(height / p) * n_cols, device=dev)
        return self.superpixels(inputs, context)

    def superpixels(self, inputs: torch.Tensor, context: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """SLIC superpixels (scikit-image) of the de-normalised images; computed once per image, on the CPU."""
        from skimage.segmentation import slic

        images = inputs.detach().float().cpu()
        mean, std = context.get("mean"), context.get("std")
        if mean is not None and std is not None:
            c = images.shape[1]
            images = images * torch.as_tensor(std).float().view(1, c, 1, 1) + torch.as_tensor(mean).float().view(1, c, 1, 1)
        else:  # per-image min-max to [0, 1]
            lo, hi = images.amin((1, 2, 3), keepdim=True), images.amax((1, 2, 3), keepdim=True)
            images = (images - lo) / (hi - lo).clamp_min(1e-12)
        pixels = images.clamp(0, 1).permute(0, 2, 3, 1).numpy().astype(np.float64)
        maps, counts = [], []
        for img in pixels:  # once per image, outside any hot loop
            channel_axis = -1 if img.shape[-1] > 1 else None
            seg = slic(img if channel_axis is not None else img[..., 0], n_segments=self.n_segments,
                       compactness=self.compactness, start_label=0, channel_axis=channel_axis)
            _, seg = np.unique(seg, return_inverse=True)
            seg = seg.reshape(img.shape[:2])
            maps.append(torch.from_numpy(seg.astype(np.int64)))
            counts.append(int(seg.max()) + 1)
        return torch.stack(maps).to(inputs.device), torch.tensor(counts, device=inputs.device)

    def ranks(self, pooled: torch.Tensor, fmap: torch.Tensor, n_feat: torch.Tensor, ids: torch.Tensor, order: str) -> torch.Tensor:
        """(N, H, W) int32 rank of each pixel's feature in the perturbation order (0 = changed first), from
        :data:`RANKS` when a recent call sorted the same maps, features, ids, seed and order (deletion and
        insertion on one batch sort once; see :meth:`sort_ranks`)."""
        settings = (self.seed, order, self.mean_relevance)
        given = (pooled, fmap, n_feat, ids)
        for entry in RANKS:
            if entry[0] == settings and all(a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)
                                            for a, b in zip(entry[1:5], given)):
                return entry[5]
        rank = self.sort_ranks(pooled, fmap, n_feat, ids, order)
        RANKS.insert(0, (settings, pooled, fmap, n_feat, ids.clone(), rank))
        del RANKS[RANK_MEMORY:]
        return rank

    def sort_ranks(self, pooled: torch.Tensor, fmap: torch.Tensor, n_feat: torch.Tensor, ids: torch.Tensor, order: str) -> torch.Tensor:
        """(N, H, W) int32 rank of each pixel's feature in the perturbation order (0 = changed first).

        One sort of a packed int64 key per image: the high 32 bits order the feature relevances (float32,
        by their order-preserving integer image), the low 32 bits are seeded random keys that break ties."""
        n = pooled.shape[0]
        f_max = int(n_feat.max())
        relevance = torch.zeros(n, f_max, device=pooled.device, dtype=torch.float64)
        relevance.scatter_add_(1, fmap.reshape(n, -1), pooled.reshape(n, -1).double())
        if self.mean_relevance:  # a feature's relevance is its pixels' mean, not their sum (IROF)
            sizes = torch.zeros_like(relevance).scatter_add_(1, fmap.reshape(n, -1), torch.ones_like(pooled.reshape(n, -1), dtype=torch.float64))
            relevance = relevance / sizes.clamp_min(1)
        if order == "morf":
            relevance = -relevance  # ascending sort of the key = most relevant first
        padding = torch.arange(f_max, device=pooled.device).view(1, -1) >= n_feat.view(-1, 1)
        relevance = relevance.masked_fill(padding, math.inf).float() + 0.0   # + 0.0: -0.0 ties with 0.0
        bits = relevance.view(torch.int32).long()
        bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)                 # monotonic in the float value
        key = (bits << 32) | random_keys(self.seed, 0, ids, f_max)
        perm = key.sort(dim=1, stable=True).indices
        rank = torch.empty(n, f_max, dtype=torch.int32, device=pooled.device)
        rank.scatter_(1, perm, torch.arange(f_max, device=perm.device, dtype=torch.int32).expand(n, -1).contiguous())
        return rank.gather(1, fmap.reshape(n, -1)).view_as(fmap)

    def grid(self, n_feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Counts (N, K+1) of changed features per step and the shared x-axis (K+1,)."""
        if self.fractions is not None:
            x = torch.tensor(self.fractions, dtype=torch.float64, device=n_feat.device)
            return torch.round(x.view(1, -1) * n_feat.view(-1, 1)).long(), x
        if self.granularity != "superpixel":
            f = int(n_feat[0])
            step = max(1, round(self.steps * f))
            k = math.ceil(f / step)
            counts = torch.clamp(torch.arange(k + 1, device=n_feat.device) * step, max=f)
            return counts.view(1, -1).expand(len(n_feat), -1), counts.double() / f
        k = math.ceil(1 / self.steps - 1e-9)
        x = torch.clamp(torch.arange(k + 1, dtype=torch.float64, device=n_feat.device) * self.steps, max=1.0)
        return torch.round(x.view(1, -1) * n_feat.view(-1, 1)).long(), x

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Model calls per image for one call, for the sweep's cost estimate: K + 1 curve points per order
        (two orders with ``abpc``); superpixel counts are taken as ``n_segments``."""
        _, height, width = shape
        if self.granularity == "pixel":
            n_features = height * width
        elif self.granularity == "patch":
            n_features = math.ceil(height / self.patch_size) * math.ceil(width / self.patch_size)
        else:
            n_features = self.n_segments
        points = self.grid(torch.tensor([n_features]))[0].shape[1]
        return points * (2 if self.abpc else 1)

    # -- substrates ----------------------------------------------------------------------------
    def _stats(self, inputs, context):
        c = inputs.shape[1]
        mean, std = context.get("mean"), context.get("std")
        mean = torch.zeros(c) if mean is None else torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std = torch.ones(c) if std is None else torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        return mean.to(inputs.device, inputs.dtype).view(1, c, 1, 1), std.to(inputs.device, inputs.dtype).view(1, c, 1, 1)

    def substrate_for(self, inputs: torch.Tensor, ids: torch.Tensor, context: dict) -> torch.Tensor | None:
        """The static substrate image of each sample (None for ``road``, which is imputed per step)."""
        if self.substrate == "road":
            return None
        if self.substrate == "mean":
            return torch.zeros_like(inputs)
        mean, std = self._stats(inputs, context)
        if self.substrate == "zero":
            return (torch.zeros_like(inputs) - mean) / std
        if self.substrate == "noise":
            return (uniform(self.seed, 1, ids, tuple(inputs.shape[1:]), inputs.dtype) - mean) / std
        sigma = max(self.blur_sigma * max(inputs.shape[-2:]), self.blur_min_sigma)
        radius = max(1, min(round(sigma), min(inputs.shape[-2:]) - 1))  # reflect padding needs radius < size
        kernel = 2 * radius + 1
        return gaussian_blur(inputs, [kernel, kernel], [sigma, sigma])

    # -- chunked evaluation -------------------------------------------------------------------
    def _evaluate(self, model, total: int, build, read, key: tuple, cap: int, device, progress: Progress) -> None:
        """Call ``read(lo, hi, model(build(lo, hi)))`` over [0, total) in chunks (fixed or tuned), reporting progress."""
        with progress(total, self.name, "image") as tick:
            def read_and_tick(lo: int, hi: int, out: torch.Tensor) -> None:
                read(lo, hi, out)
                tick(hi - lo)

            evaluate_in_chunks(model, total, build, read_and_tick, key, cap, self.chunk_size, device)

    # -- the metric ------------------------------------------------------------------------------
    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        orders = [self.order] + ([{"morf": "lerf", "lerf": "morf"}[self.order]] if self.abpc else [])
        curves, x = self.curves(model, inputs, targets, attributions, orders, **context)
        n = inputs.shape[0]
        aucs = {o: torch.trapezoid(c.double(), x.view(1, -1).expand(n, -1), dim=1).float() for o, c in curves.items()}
        extras = {}
        if self.abpc:
            morf, lerf = aucs["morf"], aucs["lerf"]
            extras = {"auc_morf": morf, "auc_lerf": lerf, "abpc": lerf - morf if self.mode == "deletion" else morf - lerf}
        higher = (self.mode == "insertion") == (self.order == "morf")
        main = curves[self.order]
        if self.mode == "insertion" and self.fractions is None:   # the grid runs from the start image to the clean one
            extras["start_score"], extras["clean_score"] = main[:, 0].float(), main[:, -1].float()
            self.check_start(extras["start_score"], extras["clean_score"])
        dropped = undefined(self.name, {"non-finite attributions": torch.isnan(aucs[self.order])}, n)
        return MetricResult(scores=aucs[self.order], higher_is_better=higher, curves=main,
                            curve_x=x.float(), extras=extras, dropped=dropped)

    def check_start(self, start: torch.Tensor, clean: torch.Tensor) -> None:
        """Warn in one line when the insertion start image still scores close to the clean image (module docstring)."""
        ok = ~(torch.isnan(start) | torch.isnan(clean))
        if not ok.any():
            return
        s, c = float(start[ok].double().mean()), float(clean[ok].double().mean())
        if c > 0 and s >= START_WARNING * c:
            warnings.warn(f"{self.name}: the {self.substrate} start image scores {s:.3f} on average, {s / c:.0%} of the clean "
                          f"image's {c:.3f}; it still carries the class (use a stronger substrate, e.g. a larger blur_min_sigma)",
                          stacklevel=3)

    def curves(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor,
               orders: list[str], **context) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The curves (N, K+1) for each order in ``orders`` (on the CPU; NaN rows for non-finite maps) and the x-axis (K+1,)."""
        maps = check_maps(self.name, inputs, attributions)
        n = inputs.shape[0]
        ids = sample_ids(n, context, inputs.device)
        progress = context.get("progress") or no_progress
        inputs = inputs.detach()
        finite = torch.isfinite(maps).flatten(1).all(1).cpu()
        pooled = pool_channels(torch.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0), self.pooling)
        fmap, n_feat = self.feature_map(inputs, context)
        counts, x = self.grid(n_feat)
        substrate = self.substrate_for(inputs, ids, context)
        _, std = self._stats(inputs, context)
        with untouched(model), torch.no_grad():
            clean = torch.cat([model(b).float() for b in inputs.split(self.chunk_size or 256)])
            cls = self._classes(clean, targets, context, inputs.device)
            clean_value = self._value(clean, cls)
            out = {}
            for o in orders:
                rank = self.ranks(pooled, fmap, n_feat, ids, o).unsqueeze(1)
                c = self._curves(model, inputs, substrate, std, rank, counts, n_feat, cls, clean_value, ids, progress)
                c[~finite] = math.nan
                out[o] = c
        return out, x.cpu()

    def _curves(self, model, inputs, substrate, std, rank, counts, n_feat, cls, clean_value, ids, progress: Progress) -> torch.Tensor:
        n, k1 = counts.shape
        counts = counts.to(rank.dtype)
        # (sample, step) pairs whose image differs from the clean input; the others reuse the clean pass.
        same = counts == 0 if self.mode == "deletion" else counts == n_feat.view(-1, 1)
        values = clean_value.view(-1, 1).repeat(1, k1).flatten()
        shared = self.substrate in SHARED_SUBSTRATES
        sub = substrate[:1] if shared else substrate
        if shared:
            # the all-substrate image (deletion at count F, insertion at count 0) is the same for every sample:
            # one forward pass of one image instead of N
            full = counts == n_feat.view(-1, 1) if self.mode == "deletion" else counts == 0
            full &= ~same
            if full.any():
                logits = model(sub).float().expand(n, -1)
                values.view(n, k1)[full] = self._value(logits, cls).view(-1, 1).expand(-1, k1)[full]
                same = same | full
        pairs = (~same).flatten().nonzero().squeeze(1)
        shape = tuple(inputs.shape[1:])
        if substrate is None:
            def build(lo: int, hi: int) -> torch.Tensor:
                p = pairs[lo:hi]
                sample, step = p // k1, p % k1
                r, c = rank.index_select(0, sample), counts[sample, step].view(-1, 1, 1, 1)
                removed = r < c if self.mode == "deletion" else r >= c
                noise = None
                if self.road_noise > 0:
                    noise = normal(self.seed, 2, ids[sample] * k1 + step, shape, inputs.dtype)
                return noisy_linear_impute(inputs.index_select(0, sample), removed, noise, std=std.flatten(),
                                           noise_std=self.road_noise)
        elif self._regular(inputs, counts, same):
            build = self._block_builder(inputs, sub, shared, rank, counts, same)
        else:
            def build(lo: int, hi: int) -> torch.Tensor:
                p = pairs[lo:hi]
                sample, step = p // k1, p % k1
                r, c = rank.index_select(0, sample), counts[sample, step].view(-1, 1, 1, 1)
                # x * keep + substrate * (1 - keep) with keep in {0, 1} (pixels that show the original image):
                # exact, and 2-3x faster than torch.where broadcast over the channels on a CPU
                keep = (r >= c if self.mode == "deletion" else r < c).to(inputs.dtype)
                out = inputs.index_select(0, sample).mul_(keep)
                if self.substrate == "mean":  # zero in normalised space
                    return out
                return out.addcmul_(sub if shared else sub.index_select(0, sample), 1 - keep)

        def read(lo: int, hi: int, logits: torch.Tensor) -> None:
            p = pairs[lo:hi]
            values[p] = self._value(logits.float(), cls[p // k1])

        n_params = sum(p.numel() for p in model.parameters())
        key = (type(model).__name__, n_params, shape, str(inputs.device), inputs.dtype, self.substrate == "road")
        self._evaluate(model, len(pairs), build, read, key, memory_cap(inputs), inputs.device, progress)
        return values.view(n, k1).cpu()

    @staticmethod
    def _regular(inputs: torch.Tensor, counts: torch.Tensor, same: torch.Tensor) -> bool:
        """True when every sample has the same counts and the same evaluated steps (pixels and patches; not
        superpixels) and float ranks are exact: then :meth:`_block_builder` applies."""
        n_pixels = inputs.shape[2] * inputs.shape[3]
        return (inputs.dtype in (torch.float32, torch.float64) and n_pixels < 2**24
                and bool((counts == counts[:1]).all()) and bool((same == same[:1]).all()))

    def _block_builder(self, inputs: torch.Tensor, sub: torch.Tensor, shared: bool, rank: torch.Tensor,
                       counts: torch.Tensor, same: torch.Tensor):
        """``build(lo, hi)`` for a static substrate when every sample evaluates the same steps (:meth:`_regular`).

        Pair p is sample p // m, evaluated step p % m (m steps per sample), so the pairs of a chunk are at most
        three rectangular blocks (the rest of one sample, whole samples, the start of one): each block is built
        by broadcasting the sample's image against its steps' 0/1 masks, written into buffers kept across
        chunks, with no per-pair gather of images or ranks. The mask is ``clamp(rank - (count - 1), 0, 1)``
        (deletion; insertion ``clamp(count - rank, 0, 1)``), exactly ``rank >= count`` (``rank < count``) as
        0/1 for integer ranks below 2^24, and the image ``x * keep + substrate * (1 - keep)`` is the same
        arithmetic as the general path, so the images are bit-identical to it."""
        n, c = inputs.shape[:2]
        hw = inputs.shape[2] * inputs.shape[3]
        dtype = inputs.dtype
        x = inputs.reshape(n, 1, c, hw)
        s = None if self.substrate == "mean" else sub.reshape(sub.shape[0], 1, c, hw)
        steps = (~same[0]).nonzero().squeeze(1)
        a, m = (int(steps[0]), len(steps)) if len(steps) else (0, 1)
        cnt = counts[0, a:a + m].to(dtype).view(1, -1, 1, 1)
        deletion = self.mode == "deletion"
        bound = cnt - 1 if deletion else cnt
        rankf = rank.reshape(n, 1, 1, hw).to(dtype)
        buffers: list[torch.Tensor] = []

        def block(s0: int, s1: int, j0: int, j1: int, out: torch.Tensor, keep: torch.Tensor) -> None:
            g, r = s1 - s0, j1 - j0
            o, k = out.view(g, r, c, hw), keep.view(g, r, 1, hw)
            if deletion:
                torch.sub(rankf[s0:s1], bound[:, j0:j1], out=k)
            else:
                torch.sub(bound[:, j0:j1], rankf[s0:s1], out=k)
            k.clamp_(0, 1)
            torch.mul(x[s0:s1], k, out=o)
            if s is not None:
                o.addcmul_(s if shared else s[s0:s1], k.neg_().add_(1))   # k becomes 1 - keep

        def build(lo: int, hi: int) -> torch.Tensor:
            b = hi - lo
            if not buffers or buffers[0].shape[0] < b:
                buffers[:] = [torch.empty(b, c, hw, dtype=dtype, device=inputs.device),
                              torch.empty(b, 1, hw, dtype=dtype, device=inputs.device)]
            out, keep = buffers[0][:b], buffers[1][:b]
            for sa, sb, ja, jb, ra, rb in row_blocks(lo, hi, m):
                block(sa, sb, ja, jb, out[ra:rb], keep[ra:rb])
            return out.view(b, *inputs.shape[1:])
        return build

    def _value(self, logits: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        if self.score == "correct":
            return (logits.argmax(1) == cls).float()
        out = logits.softmax(1) if self.score == "softmax" else logits
        return out.gather(1, cls.view(-1, 1)).squeeze(1)

    def _classes(self, clean_logits: torch.Tensor, targets: torch.Tensor, context: dict, device) -> torch.Tensor:
        n = clean_logits.shape[0]
        if self.target == "predicted":
            return clean_logits.argmax(1)
        source = context.get("labels") if self.target == "label" else targets
        if source is None:
            raise ValueError(f"{self.name}.target={self.target} needs the {'labels in the context (labels=...)' if self.target == 'label' else 'targets'}")
        cls = torch.as_tensor(source, device=device).long().reshape(-1)
        if cls.numel() != n:
            raise ValueError(f"{self.name}: got {cls.numel()} {self.target} classes for {n} inputs")
        return cls
