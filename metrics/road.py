"""ROAD: Remove And Debias (Rong, Leemann, Borisov, Kasneci & Kasneci, ICML 2022).

Removes the top (MoRF) or bottom (LeRF) p % of pixels (all channels together) by the
channel-pooled attribution and replaces them by ROAD's noisy linear imputation (each
removed pixel = weighted mean of its 8 neighbours, solved jointly per channel, plus
N(0, 0.01^2) noise on the [0, 1] scale; see :mod:`metrics.road_imputation`, batched in
torch over every image, channel and percentage), without retraining. Default
percentages 10, 20, 30, 40, 50, 70, 90 (the paper's CIFAR-10 grid); the model output is
``correct`` (1 if the imputed image is classified as the target: the paper's accuracy,
target = the label by default), ``softmax`` or ``logit``. Works on RGB and any number
of channels, and scores every sample (no first-batch-only aggregation).

``scores``: the mean over the percentages of the ``order`` curve (default MoRF: lower is
better; LeRF: higher is better); headline: mean (for ``correct`` this is the accuracy
averaged over the percentages). ``curves``/``curve_x``: that curve over the fractions
p / 100. Extras per sample: ``morf``, ``lerf`` (means over percentages),
``lerf_minus_morf`` (higher is better) and ``morf_<p>`` / ``lerf_<p>`` per percentage.

Quantus 0.6's ROAD differs (tests/metrics/test_quantus_reference.py): at noise 0 its imputation
(a sparse direct solve) and ours agree to 1e-4 on the same masks (ours stops at an error
estimate of 5e-6), and with our noisy images replayed as its ``perturb_func`` its accuracies equal our MoRF
curve means. But it computes MoRF only and returns one accuracy per percentage (no per-sample
scores, no LeRF); it removes int(p % of the pixels) (floor; ours rounds: 70 % of 144 px is 100
there, 101 here); its default grid is 1, 3, ..., 99 %; its noise std is in the units of the
input (ours is 0.01 on the [0, 1] pixel scale, 0.01 / std_c in normalised space); it averages
only the first batch of its ``batch_size`` (exact case: 1.0 reported for a true 0.5); and it
indexes out of bounds on RGB images (it ranks every channel value, but imputes per pixel).
"""
from __future__ import annotations

import torch
from torch import nn

from methods.validation import check_choice, check_int, check_seed
from metrics._common import POOLINGS
from metrics.ablation import AblationCurve
from metrics.result import MetricResult, undefined
from metrics.road_imputation import NOISE_STD

DEFAULT_PERCENTAGES = (10, 20, 30, 40, 50, 70, 90)


class ROAD:
    """ROAD: remove the top (MoRF) or bottom (LeRF) pixels, impute them, score the model; no retraining.

    Runs the :class:`~metrics.ablation.AblationCurve` engine with the ``road`` substrate (noisy linear
    imputation) at pixel granularity on the ``percentages`` grid, in both orders. ``scores`` is the
    mean of the ``order`` curve over the percentages (MoRF: lower is better; LeRF: higher is better);
    headline: mean. ``needs`` is empty (the default ``target: label`` reads the labels the harness
    puts in the context).

    Args:
        percentages (list of float, optional): Percent of the pixels removed at each curve point, an
            increasing list of values in (0, 100). Default: [10, 20, 30, 40, 50, 70, 90] (the paper's
            CIFAR-10 grid).
        order (str, optional): The curve that gives ``scores``: ``morf`` (lower is better) or ``lerf``
            (higher is better); both are computed and logged. Default: ``morf``.
        score (str, optional): What is recorded for the target class: ``correct`` (1 if the imputed
            image is classified as the target: the paper's accuracy), ``softmax`` (probability) or
            ``logit``. Default: ``correct``.
        target (str, optional): The class scored: ``label`` (as the paper; needs ``labels`` in the
            context), ``predicted`` (on the clean input) or ``explained`` (the targets the maps
            explain). Default: ``label``.
        pooling (str, optional): Channel pooling of the attributions before pixels are ranked: ``sum``,
            ``abs_sum``, ``max`` or ``abs_max``. Default: ``sum``.
        noise (float, optional): Std of the imputation noise on the [0, 1] pixel scale, >= 0 (0: no
            noise). Default: 0.01.
        chunk_size (int or None, optional): Imputed images per solve and forward pass, >= 1; null:
            automatic. Default: None.
        seed (int or None, optional): Tie-breaking and the imputation noise; null takes the run's seed
            (the harness fills it in). Default: None.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, percentages=DEFAULT_PERCENTAGES, order: str = "morf", score: str = "correct", target: str = "label",
                 pooling: str = "sum", noise: float = NOISE_STD, chunk_size: int | None = None, seed: int | None = None) -> None:
        name = "road"
        try:
            pct = [float(p) for p in percentages]
        except TypeError:
            pct = []
        if not pct or any(not 0 < p < 100 for p in pct) or any(b <= a for a, b in zip(pct, pct[1:])):
            raise ValueError(f"road.percentages must be an increasing list of values in (0, 100); got {percentages}")
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise < 0:
            raise ValueError(f"road.noise must be a number >= 0 (std on the [0, 1] pixel scale); got {noise!r}")
        self.percentages = pct
        self.order = check_choice(name, "order", order, ("morf", "lerf"))
        self.engine = AblationCurve(
            mode="deletion", substrate="road", granularity="pixel", fractions=[p / 100 for p in pct],
            score=check_choice(name, "score", score, ("correct", "softmax", "logit")),
            target=check_choice(name, "target", target, ("label", "predicted", "explained")),
            pooling=check_choice(name, "pooling", pooling, POOLINGS), road_noise=float(noise),
            chunk_size=check_int(name, "chunk_size", chunk_size, allow_none=True), seed=check_seed(name, seed), name=name)

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model in one call (for the sweep's cost estimate): one imputed image
        per percentage, in both orders, and the clean input."""
        return 2 * len(self.percentages) + 1

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor, **context) -> MetricResult:
        curves, x = self.engine.curves(model, inputs, targets, attributions, ["morf", "lerf"], **context)
        means = {o: c.mean(1) for o, c in curves.items()}
        extras = {"morf": means["morf"], "lerf": means["lerf"], "lerf_minus_morf": means["lerf"] - means["morf"]}
        for o, c in curves.items():
            for j, p in enumerate(self.percentages):
                extras[f"{o}_{p:g}"] = c[:, j]
        dropped = undefined("road", {"non-finite attributions": torch.isnan(means[self.order])}, len(means[self.order]))
        return MetricResult(scores=means[self.order], higher_is_better=self.order == "lerf", curves=curves[self.order],
                            curve_x=x.float(), extras=extras, dropped=dropped)
