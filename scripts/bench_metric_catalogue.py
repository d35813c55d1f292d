"""Benchmark of every metric with a Quantus 0.6 counterpart against it, at equal settings (not a test; prints one table).

    python scripts/bench_metric_catalogue.py                  # needs quantus (pip install .[bench])
    python scripts/bench_metric_catalogue.py --n 64 --size 32 --repeats 3
    python scripts/bench_metric_catalogue.py --only faithfulness_correlation,max_sensitivity

On N single-channel images of ``--size`` pixels (untrained models: values and timing do not depend
on training; a linear model for the removal and localisation metrics, a small ReLU CNN with its
input gradient as the explainer for those that re-explain), each metric is run by both libraries at
the settings of tests/metrics/test_quantus_reference.py. The seeded-random metrics get *our* draws
injected into Quantus (tests/metrics/quantus_replay.py: our perturbations as its perturb_func, our
subsets as its np.random.choice, our randomised models as its random-layer generator), so the values
must agree. Where Quantus's score is a known transform of ours (IROF: S x ours + (1 + r_1) / 2;
efficient MPRT: ours - 1; non-sensitivity: ours x F) the transform is applied to ours, and curves
are compared where Quantus's scalar differs by design (selectivity, region perturbation, MPRT, smooth
MPRT). Sensitivity-N is compared with Quantus's FaithfulnessCorrelation at each subset size (Quantus's
SensitivityN is another quantity). Input invariance compares the per-sample verdicts.

Per metric it prints both mean values, the largest absolute difference of the per-sample values,
both times (best of ``--repeats``; the machine may be shared), their ratio, and Quantus's bound:
the images Quantus passes through the model (counted with a forward hook), timed alone through the
bare model at the best of a few batch sizes; Quantus / that floor is the largest speed-up any
implementation doing Quantus's forward passes could reach. For the metrics that re-explain, the
floor counts forward passes only (the explainer's backward pass is not in it), so the bound is generous.
Not here: deletion / insertion against PixelFlipping (scripts/bench_metrics.py --quantus), metrics
Quantus lacks (energy pointing game, spurious background, background gap, ROAR, insertion), and
Quantus metrics that compute another quantity or are broken (Completeness: exact float equality;
Monotonicity: never adds the features; Continuity: translations; ROAD: its own imputation; Focus and
Consistency: no counterpart here).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import metrics as M  # noqa: E402
from metrics.smooth_mprt import NoiseAveraged  # noqa: E402
from tests.metrics.quantus_replay import (  # noqa: E402  (restores np.trapz for Quantus)
    Replay,
    gradient,
    our_stages,
    our_subsets,
    quantus_explainer,
    stage_copies,
)
from tests.toy_models import relu_cnn  # noqa: E402


class Tally:
    """Images passed through the model while ``active`` (a forward pre-hook; survives Quantus's deep copies)."""

    def __init__(self) -> None:
        self.images, self.active = 0, False

    def __deepcopy__(self, memo):
        return self

    def hook(self, module, args):
        if self.active:
            self.images += args[0].shape[0]


def best(fn, repeats: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def floor(model: nn.Module, x: torch.Tensor, images: int, repeats: int) -> float:
    """Seconds to pass ``images`` copies of inputs through the bare model at the best of a few batch sizes (no_grad, best of ``repeats``)."""
    if images == 0:
        return math.nan
    times = []
    with torch.no_grad():
        for bs in [64, 256, 1024] * repeats:
            batch = x[:1].expand(bs, *x.shape[1:]).contiguous()
            t0 = time.perf_counter()
            for lo in range(0, images, bs):
                model(batch[: min(bs, images - lo)])
            times.append(time.perf_counter() - t0)
    return min(times)


def vec(v) -> torch.Tensor:
    if isinstance(v, dict):
        v = list(v.values())
    return torch.as_tensor(np.asarray(v, dtype=np.float64)).reshape(-1) if not torch.is_tensor(v) else v.double().reshape(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated metric names")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import quantus
    import quantus.helpers.utils as quantus_utils
    import quantus.metrics.faithfulness.sufficiency as quantus_sufficiency
    import quantus.metrics.randomisation.smooth_mprt as quantus_smooth_mprt
    from quantus.functions.similarity_func import correlation_spearman, distance_manhattan
    from scipy.spatial.distance import cdist

    n, s = args.n, args.size
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, s, s, generator=gen)
    x[:, :, 0, 0] = 0                     # Quantus's "black" baseline is the image minimum: make it our zero substrate
    a = torch.rand(n, 1, s, s, generator=gen)
    masks = torch.zeros(n, 1, s, s, dtype=torch.bool)
    for i in range(n):
        r, c = i % (s // 2), (3 * i) % (s // 2)
        masks[i, :, r: r + s // 3, c: c + s // 3] = True
    torch.manual_seed(0)                  # the models' default initialisation: the same table on every run
    lin = nn.Sequential(nn.Flatten(), nn.Linear(s * s, 4)).eval()
    y = lin(x).argmax(1)
    exact = (x * lin[1].weight[y].view(n, 1, s, s)).detach()
    noisy = exact + 0.3 * exact.abs().mean() * torch.randn(x.shape, generator=gen)
    # non-sensitivity: a third of the pixels unused, the others with |x w| >= 0.25, so that Quantus's absolute
    # thresholds (1e-5 on the max-normalised map and on the raw drop) and our relative ones select the same sets
    sens = nn.Sequential(nn.Flatten(), nn.Linear(s * s, 4)).eval()
    with torch.no_grad():
        w = torch.rand(4, s * s, generator=gen) + 0.5
        sens[1].weight.copy_(w * torch.where(torch.rand(4, s * s, generator=gen) < 0.5, -1.0, 1.0))
        sens[1].weight[:, ::3] = 0
    xn = 0.5 + 0.5 * x
    yn = sens(xn).argmax(1)
    exact_n = (xn * sens[1].weight[yn].view(n, 1, s, s)).detach()
    exact_n[:, :, 0, 1] = 0               # the map misses a used pixel ...
    exact_n[:, :, 0, 3] += 0.5            # ... and credits an unused one (column 3 of the flattened image)
    cnn = relu_cnn(channels=1, classes=4, seed=0)
    xc = xn                               # no zero pixel: the relative stabilities divide by the input
    yc = cnn(xc).argmax(1)
    grad = gradient(cnn, xc, yc)
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * (s - 2) ** 2, 4)).eval()
    yv = conv(x).argmax(1)
    tallies = {id(m): Tally() for m in (lin, sens, cnn, conv)}
    for m in (lin, sens, cnn, conv):
        m.register_forward_pre_hook(tallies[id(m)].hook)
    k = s * s // 5
    sparse = a * (a > 0.7)
    families = torch.randn(2, 1, s, s, generator=gen)
    similar = families[torch.arange(n) % 2] + 0.4 * torch.randn(n, 1, s, s, generator=gen)
    off = dict(abs=False, normalise=False, disable_warnings=True)

    def q_call(q, model, target, maps, s_batch=None, inputs=None, **kw):
        inputs = x if inputs is None else inputs
        return lambda: q(model=model, x_batch=inputs.numpy(), y_batch=target.numpy(), a_batch=maps.numpy(),
                         s_batch=None if s_batch is None else s_batch.numpy().astype(float), device="cpu", **kw)

    cases = []   # (name, model, ours() -> per-sample values on Quantus's scale, theirs() -> values)

    def case(name, model, ours, theirs):
        cases.append((name, model, ours, theirs))

    # deterministic: maps and masks only, or removal on the linear model
    case("complexity", lin, lambda: M.Complexity(pooling="none")(lin, x, y, a).scores,
         q_call(quantus.Complexity(abs=True, normalise=False, disable_warnings=True), lin, y, a))
    case("effective_complexity", lin, lambda: M.EffectiveComplexity(pooling="none")(lin, x, y, sparse).extras["count"],
         q_call(quantus.EffectiveComplexity(eps=1e-5, abs=True, normalise=True, disable_warnings=True), lin, y, sparse))
    case("sparseness", lin, lambda: M.Sparseness()(lin, x, y, a).scores, q_call(quantus.Sparseness(**off), lin, y, a))
    case("top_k_intersection", lin, lambda: M.TopKIntersection(k=k / (s * s), seed=0)(lin, x, y, a, masks=masks).scores,
         q_call(quantus.TopKIntersection(k=k, **off), lin, y, a, masks))
    case("localisation_auc", lin, lambda: M.LocalisationAUC()(lin, x, y, a, masks=masks).scores, q_call(quantus.AUC(**off), lin, y, a, masks))
    case("attribution_localisation", lin, lambda: M.AttributionLocalisation()(lin, x, y, a, masks=masks).scores,
         q_call(quantus.AttributionLocalisation(**off), lin, y, a, masks))
    case("pointing_game", lin, lambda: M.PointingGame()(lin, x, y, a, masks=masks).scores, q_call(quantus.PointingGame(**off), lin, y, a, masks))
    case("relevance_mass", lin, lambda: M.RelevanceMass()(lin, x, y, a, masks=masks).scores,
         q_call(quantus.RelevanceMassAccuracy(**off), lin, y, a, masks))
    case("relevance_rank", lin, lambda: M.RelevanceRank(seed=0)(lin, x, y, a, masks=masks).scores,
         q_call(quantus.RelevanceRankAccuracy(**off), lin, y, a, masks))
    case("faithfulness_estimate", lin, lambda: M.FaithfulnessEstimate(granularity="pixel")(lin, x, y, a).scores,
         q_call(quantus.FaithfulnessEstimate(features_in_step=1, perturb_baseline="black", **off), lin, y, a))
    case("monotonicity_correlation", lin, lambda: M.MonotonicityCorrelation(granularity="pixel")(lin, x, y, a).scores,
         q_call(quantus.MonotonicityCorrelation(nr_samples=2, features_in_step=1, abs=True, normalise=False, perturb_baseline="black",
                                                disable_warnings=True), lin, y, a, softmax=False))
    patches = (s // 4) ** 2
    case("selectivity (curve)", lin, lambda: M.Selectivity(patch_size=4, steps=1 / patches, score="logit")(lin, x, y, a).curves[:, 1:],
         q_call(quantus.Selectivity(patch_size=4, perturb_baseline="black", **off), lin, y, a, softmax=False))

    def region_curve():
        c = M.RegionPerturbation(patch_size=4, steps=1 / patches, substrate="zero", score="logit")(lin, x, y, a).curves
        return c[:, :1] - c[:, 1:]
    case("region_perturbation (curve)", lin, region_curve,
         q_call(quantus.RegionPerturbation(patch_size=4, regions_evaluation=patches, order="morf", perturb_baseline="black", **off),
                lin, y, a, softmax=False))
    case("non_sensitivity (x F)", sens, lambda: M.NonSensitivity(granularity="pixel")(sens, xn, yn, exact_n).scores.double() * s * s,
         q_call(quantus.NonSensitivity(eps=1e-5, features_in_step=1, perturb_baseline=0.0, abs=True, normalise=True, disable_warnings=True),
                sens, yn, exact_n, inputs=xn, softmax=False))
    irof = M.IROF(granularity="patch", patch_size=4, steps=1 / patches)

    def irof_ours():
        res = irof(lin, x, y, a)
        return patches * res.scores.double() + (1 + res.curves[:, 1].double()) / 2

    irof_segments = irof.feature_map(x, {})[0].numpy()

    def irof_theirs():
        segments = iter(irof_segments)
        with mock.patch.object(quantus_utils, "get_superpixel_segments", lambda img, segmentation_method: next(segments)):
            return q_call(quantus.IROF(perturb_baseline=0.0, return_aggregate=False, **off), lin, y, a, softmax=True)()
    case("irof (S x ours + (1 + r_1) / 2)", lin, irof_ours, irof_theirs)

    def sufficiency_theirs():
        with mock.patch.object(quantus_sufficiency, "cdist", lambda xa, xb, metric, V=None: cdist(xa, xb, metric)):
            return q_call(quantus.Sufficiency(threshold=0.3, distance_func="cosine", **off), lin, y, similar)()
    case("sufficiency (cosine; no neighbour: NaN as 0)", lin, lambda: torch.nan_to_num(M.Sufficiency(threshold=0.3)(lin, x, y, similar).scores, nan=0.0),
         sufficiency_theirs)

    # seeded random subsets: ours injected as np.random.choice
    fc = M.FaithfulnessCorrelation(seed=0)

    def fc_theirs(metric, fraction, stream):
        size = max(1, round(fraction * s * s))
        q = quantus.FaithfulnessCorrelation(nr_runs=metric.n_perturbations, subset_size=size, perturb_baseline=0.0,
                                            return_aggregate=False, **off)
        with our_subsets(metric, n, s * s, size, stream):
            return q_call(q, lin, y, noisy, softmax=False)()
    case("faithfulness_correlation", lin, lambda: fc(lin, x, y, noisy).scores, lambda: fc_theirs(fc, fc.subset_size, 20))
    sn = M.SensitivityN(seed=0)
    case("sensitivity_n (vs FaithfulnessCorrelation per size)", lin, lambda: sn(lin, x, y, noisy).curves.T,
         lambda: np.stack([fc_theirs(sn, f, 30 + j) for j, f in enumerate(sn.fractions)]))

    # seeded perturbations: ours replayed as Quantus's perturb_func
    inf = M.Infidelity(n_perturbations=(s // 4) ** 2, seed=0)
    inf_draws = (x.unsqueeze(1) - inf.noise(x, torch.arange(n))).transpose(0, 1)     # one draw per 4 x 4 patch position

    def inf_theirs():
        q = quantus.Infidelity(perturb_patch_sizes=[4], n_perturb_samples=1, perturb_func=Replay(inf_draws), **off)
        return q_call(q, lin, y, noisy, softmax=False)()
    case("infidelity (our draws as its patch perturbations)", lin, lambda: inf(lin, x, y, noisy).scores, inf_theirs)
    def robust(metric, q, **kw):
        xs = metric.perturbed(cnn, xc, yc, torch.arange(n))      # our draws, made once outside the timing

        def theirs():
            q.perturb_func = Replay(xs)
            return q_call(q, cnn, yc, grad, inputs=xc, explain_func=quantus_explainer, **kw)()
        return lambda: metric(cnn, xc, yc, grad, explainer=gradient).scores, theirs
    qr = dict(nr_samples=10, **off)
    case("max_sensitivity", cnn, *robust(M.MaxSensitivity(seed=0, radius=0.1), quantus.MaxSensitivity(**qr)))
    case("average_sensitivity", cnn, *robust(M.AverageSensitivity(seed=0, radius=0.1), quantus.AvgSensitivity(**qr)))
    case("local_lipschitz", cnn, *robust(M.LocalLipschitz(seed=0), quantus.LocalLipschitzEstimate(**qr)))
    case("continuity (LocalLipschitzEstimate, L1 numerator)", cnn,
         *robust(M.Continuity(seed=0), quantus.LocalLipschitzEstimate(norm_numerator=distance_manhattan, **qr)))
    # Quantus offsets only exact zeros of the map by eps_min, ours every |entry| < eps: tiny eps makes them the same
    small = dict(radius=0.01, seed=0, eps=1e-12, eps_min=1e-12)
    qr = dict(qr, eps_min=1e-12)
    case("relative_input_stability", cnn, *robust(M.RelativeStability(kind="input", **small), quantus.RelativeInputStability(**qr), softmax=False))
    case("relative_output_stability", cnn, *robust(M.RelativeStability(kind="output", **small), quantus.RelativeOutputStability(**qr),
                                                   softmax=False))
    case("relative_representation_stability", cnn, *robust(M.RelativeStability(kind="representation", **small),
                                                            quantus.RelativeRepresentationStability(layer_names=["6"], **qr), softmax=False))

    # other class, randomised models, noise: ours injected
    rl = M.RandomLogit(similarity="spearman", seed=0)

    other = rl(cnn, xc, yc, grad, explainer=gradient).extras["other_class"].long()
    index = torch.where(other < yc, other, other - 1).numpy()

    def rl_theirs():
        q = quantus.RandomLogit(num_classes=4, similarity_func=correlation_spearman, **off)
        with mock.patch.object(np.random, "randint", lambda lo, hi, size: index):
            return q_call(q, cnn, yc, grad, inputs=xc, explain_func=quantus_explainer)()
    case("random_logit (spearman)", cnn, lambda: rl(cnn, xc, yc, grad, explainer=gradient).extras["spearman"], rl_theirs)
    mprt = M.Randomization(seed=0)
    mprt_stages = stage_copies(mprt, cnn)

    def mprt_theirs():
        q = quantus.MPRT(layer_order="top_down", abs=True, normalise=False, disable_warnings=True)
        with our_stages(mprt_stages):
            out = q_call(q, cnn, yc, grad, inputs=xc, explain_func=quantus_explainer)()
        out.pop("original")
        return np.array(list(out.values()))
    case("randomization / MPRT (curve)", cnn, lambda: mprt(cnn, xc, yc, grad, explainer=gradient).curves.T, mprt_theirs)
    em = M.EfficientMPRT(seed=0)
    em_random = em.randomised(cnn)

    def em_theirs():
        q = quantus.EfficientMPRT(complexity_func_kwargs={"n_bins": em.n_bins}, **off)
        with our_stages([(name, em_random) for name, _ in M.Randomization.layers(cnn)]):
            return q_call(q, cnn, yc, grad, inputs=xc, explain_func=quantus_explainer)()
    case("efficient_mprt (ours - 1)", cnn, lambda: em(cnn, xc, yc, grad, explainer=gradient).scores.double() - 1, em_theirs)
    sm = M.SmoothMPRT(seed=0)
    smooth = NoiseAveraged(gradient, sm.n_noise, sm.noise_level, sm.seed, torch.arange(n))
    smoothed, unit, sm_stages = smooth(cnn, xc, yc), smooth.unit_noise(xc), stage_copies(sm, cnn)

    def sm_theirs():
        draws, calls = iter(range(10 ** 9)), iter(range(10 ** 9))

        def randn(*shape):
            return unit[next(draws) % sm.n_noise].double().numpy()

        def explain(model, inputs, targets, **kw):   # Quantus's last copy is the clean input: weigh it 0
            g = quantus_explainer(model, inputs, targets)
            return np.zeros_like(g) if next(calls) % (sm.n_noise + 1) == sm.n_noise else g * (sm.n_noise + 1) / sm.n_noise
        q = quantus.SmoothMPRT(nr_samples=sm.n_noise + 1, noise_magnitude=sm.noise_level, abs=True, normalise=False, disable_warnings=True)
        with ExitStack() as stack:
            stack.enter_context(mock.patch.object(np.random, "randn", randn))
            stack.enter_context(mock.patch.object(quantus_smooth_mprt.quantus, "explain", explain))
            stack.enter_context(our_stages(sm_stages))
            out = q(model=cnn, x_batch=xc.numpy(), y_batch=yc.numpy(), a_batch=smoothed.numpy(), explain_func=explain, device="cpu")
        out.pop("original")
        return np.array(list(out.values()))
    case("smooth_mprt (curve)", cnn, lambda: sm(cnn, xc, yc, grad, explainer=gradient).curves.T, sm_theirs)
    ii = M.InputInvariance(shift=-1.0, tolerance=1e-4)
    gconv = gradient(conv, x, yv)
    case("input_invariance (verdicts; Quantus leaves the first input value unshifted)", conv,
         lambda: ii(conv, x, yv, gconv, explainer=gradient).extras["invariant"],
         q_call(quantus.InputInvariance(input_shift=-1.0, **off), conv, yv, gconv, explain_func=quantus_explainer))

    only = {o.strip() for o in args.only.split(",") if o.strip()}
    print(f"N={n} images of {s}x{s} px, best of {args.repeats}, {args.threads} thread(s); quantus {quantus.__version__}")
    print()
    print("| metric | ours (mean) | Quantus (mean) | max abs diff (relative) | ours s | Quantus s | Quantus / ours | Quantus images | "
          "floor s | bound |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, model, ours, theirs in cases:
        if only and name.split(" ")[0] not in only:
            continue
        tally = tallies[id(model)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_ours, v_ours = best(ours, args.repeats)
            tally.images, tally.active = 0, True
            t_q, v_q = best(theirs, 1)
            tally.active = False
            images = tally.images
            if args.repeats > 1:
                t_q = min(t_q, best(theirs, args.repeats - 1)[0])
        v_ours, v_q = vec(v_ours), vec(v_q)
        gap = (v_ours - v_q).abs().nan_to_num(nan=math.inf) if v_ours.shape == v_q.shape else torch.full((1,), math.nan)
        diff, rel = float(gap.max()), float((gap / v_q.abs().clamp_min(1e-12)).max())
        t_floor = floor(model, x, images, args.repeats)
        bound = "–" if images == 0 else f"{t_floor:.3f} | {t_q / t_floor:.1f}x"
        print(f"| {name} | {float(v_ours.nanmean()):.4g} | {float(v_q.nanmean()):.4g} | {diff:.1e} ({rel:.0e}) | {t_ours:.3f} | {t_q:.3f} | "
              f"{t_q / t_ours:.1f}x | {images} | {bound if images else '– | –'} |", flush=True)


if __name__ == "__main__":
    main()
