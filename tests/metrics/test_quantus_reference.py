"""The new deterministic metrics against Quantus 0.6 at equal settings (skipped when Quantus is not installed: ``pip install .[bench]``).

Quantus calls ``np.trapz``, which NumPy 2.4 removed: the shim below restores it before the import.
Settings are chosen so both libraries compute the same definition: single-channel maps, no
normalisation, no abs where our definition is signed; continuous random maps (no ties at the top-k).
Faithfulness estimate is compared on images whose minimum is 0 (Quantus's "black" baseline is the
image minimum). Where Quantus is wrong the test shows it on an analytic or exact case instead of comparing values
(weighted attribution localisation, PixelFlipping's AUC, ROAD's first-batch average, Completeness's exact equality, ...).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.metrics.quantus_replay import Replay, gradient, our_stages, our_subsets, quantus_explainer, stage_copies  # noqa: E402  (np.trapz shim)

quantus = pytest.importorskip("quantus")

from metrics.attribution_localisation import AttributionLocalisation  # noqa: E402
from metrics.complexity import Complexity  # noqa: E402
from metrics.effective_complexity import EffectiveComplexity  # noqa: E402
from metrics.faithfulness_estimate import FaithfulnessEstimate  # noqa: E402
from metrics.localisation_auc import LocalisationAUC  # noqa: E402
from metrics.top_k_intersection import TopKIntersection  # noqa: E402
from tests.toy_models import LinearModel  # noqa: E402


@pytest.fixture(scope="module")
def batch():
    gen = torch.Generator().manual_seed(1)      # not seed 0, the toy model's own weight stream
    x = torch.randn(4, 1, 12, 12, generator=gen)
    a = torch.rand(4, 1, 12, 12, generator=gen)
    masks = torch.zeros(4, 1, 12, 12, dtype=torch.bool)
    for i in range(4):
        masks[i, :, 2 + i: 8 + i, 3: 9] = True
    model = LinearModel(channels=1, size=12).eval()
    return model, x, model(x).argmax(1), a, masks


def run(q, model, x, y, a, s=None):
    out = q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), s_batch=None if s is None else s.numpy().astype(float),
            device="cpu")
    return torch.tensor(np.asarray(out, dtype=np.float64)).float()


def test_complexity_and_effective_complexity_match_quantus(batch):
    model, x, y, a, _ = batch
    ours = Complexity(pooling="none")(model, x, y, a).scores
    torch.testing.assert_close(ours, run(quantus.Complexity(abs=True, normalise=False, disable_warnings=True), model, x, y, a), atol=1e-5, rtol=1e-5)
    sparse = a * (a > 0.7)
    count = EffectiveComplexity(pooling="none")(model, x, y, sparse).extras["count"]
    theirs = run(quantus.EffectiveComplexity(eps=1e-5, abs=True, normalise=True, disable_warnings=True), model, x, y, sparse)
    torch.testing.assert_close(count, theirs)


def test_localisation_metrics_match_quantus(batch):
    model, x, y, a, masks = batch
    tki = TopKIntersection(k=30 / 144, seed=0)(model, x, y, a, masks=masks).scores
    torch.testing.assert_close(tki, run(quantus.TopKIntersection(k=30, abs=False, normalise=False, disable_warnings=True), model, x, y, a, masks))
    auc = LocalisationAUC()(model, x, y, a, masks=masks).scores
    torch.testing.assert_close(auc, run(quantus.AUC(abs=False, normalise=False, disable_warnings=True), model, x, y, a, masks), atol=1e-6, rtol=0)
    loc = AttributionLocalisation()(model, x, y, a, masks=masks).scores
    theirs = run(quantus.AttributionLocalisation(abs=False, normalise=False, disable_warnings=True), model, x, y, a, masks)
    torch.testing.assert_close(loc, theirs, atol=1e-6, rtol=0)


def test_faithfulness_estimate_matches_quantus(batch):
    model, x, y, a, _ = batch
    x = x.abs()
    x[:, :, 0, 0] = 0            # Quantus's "black" is the image minimum: make it 0, our `mean` substrate (zero)
    y = model(x).argmax(1)
    ours = FaithfulnessEstimate(granularity="pixel")(model, x, y, a).scores
    q = quantus.FaithfulnessEstimate(features_in_step=1, abs=False, normalise=False, perturb_baseline="black", disable_warnings=True)
    torch.testing.assert_close(ours, run(q, model, x, y, a), atol=1e-4, rtol=1e-4)


def test_quantus_monotonicity_never_adds_the_features(batch):
    """Quantus 0.6's Monotonicity "adds" each feature with its perturb_func, which writes the *baseline* value into the
    baseline image: the image never changes, the curve is flat and every map is monotonic. Ours adds the image's values."""
    model, _, _, a, _ = batch
    x = torch.randn(4, 1, 12, 12, generator=torch.Generator().manual_seed(5))
    y = model(x).argmax(1)
    theirs = quantus.Monotonicity(features_in_step=1, abs=False, normalise=False, perturb_baseline="black", disable_warnings=True)
    assert all(theirs(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu"))
    from metrics.monotonicity import Monotonicity
    ours = Monotonicity(steps=1 / 144, tolerance=0)(model, x, y, a)
    assert (ours.extras["monotone"] == 0).all()        # a random map on a mixed-sign linear model is not monotonic


@pytest.mark.parametrize("softmax", [True, False])
def test_selectivity_and_region_perturbation_curves_match_quantus(softmax):
    """Quantus returns the curves after each patch (no unperturbed point); their scalar summaries differ by design
    (Quantus: np.trapz with step 1; ours: trapezoid on [0, 1] / Samek's AOPC over k = 0..L), so the curves are compared."""
    from metrics.region_perturbation import RegionPerturbation
    from metrics.selectivity import Selectivity

    gen = torch.Generator().manual_seed(1)
    model = LinearModel(channels=1, size=12).eval()
    x = torch.rand(4, 1, 12, 12, generator=gen)
    x[:, :, 0, 0] = 0                     # Quantus's "black" is the image minimum: 0, our zero substrate
    a = torch.rand(4, 1, 12, 12, generator=gen)
    y = model(x).argmax(1)
    score = "softmax" if softmax else "logit"
    args = dict(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu", softmax=softmax)
    theirs = quantus.Selectivity(patch_size=4, abs=False, normalise=False, perturb_baseline="black", disable_warnings=True)(**args)
    ours = Selectivity(patch_size=4, steps=1 / 9, score=score)(model, x, y, a).curves[:, 1:]
    torch.testing.assert_close(ours, torch.tensor(np.asarray(theirs)).float(), atol=1e-6, rtol=1e-6)
    theirs = quantus.RegionPerturbation(patch_size=4, regions_evaluation=9, order="morf", abs=False, normalise=False,
                                        perturb_baseline="black", disable_warnings=True)(**args)
    c = RegionPerturbation(patch_size=4, steps=1 / 9, substrate="zero", score=score)(model, x, y, a).curves
    torch.testing.assert_close(c[:, :1] - c[:, 1:], torch.tensor(np.asarray(theirs)).float(), atol=1e-6, rtol=1e-6)


def test_monotonicity_correlation_matches_quantus_with_a_deterministic_baseline():
    """With the "black" baseline (image minimum 0 = our zero substrate) every one of Quantus's nr_samples draws is the same."""
    from metrics.monotonicity_correlation import MonotonicityCorrelation

    gen = torch.Generator().manual_seed(1)
    model = LinearModel(channels=1, size=12).eval()
    x = torch.rand(4, 1, 12, 12, generator=gen)
    x[:, :, 0, 0] = 0
    a = torch.rand(4, 1, 12, 12, generator=gen)
    y = model(x).argmax(1)
    q = quantus.MonotonicityCorrelation(nr_samples=2, features_in_step=1, abs=True, normalise=False, perturb_baseline="black",
                                        disable_warnings=True)
    theirs = q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu", softmax=False)
    ours = MonotonicityCorrelation(granularity="pixel")(model, x, y, a).scores
    torch.testing.assert_close(ours, torch.tensor(np.asarray(theirs)).float(), atol=1e-5, rtol=1e-5)


# ---- the seeded-random metrics: our draws injected into Quantus ------------------------------------------------
# Quantus draws its noise (perturb_func) and subsets (np.random.choice) from NumPy's global RNG; ours come from the
# counter-based streams of metrics._common. Each test below computes our draws with the production code path
# (MaxSensitivity.perturbed, Removal.random_subsets, ...) and hands exactly those to Quantus through its own hooks
# (a perturb_func that returns them in Quantus's call order, or np.random.choice patched for the call), so both
# libraries evaluate the same perturbations and the per-sample values must agree.


@pytest.fixture(scope="module")
def cnn_batch():
    from tests.toy_models import relu_cnn

    model = relu_cnn(channels=1, classes=3, seed=0)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    y = model(x).argmax(1)
    return model, x, y, gradient(model, x, y)


def robustness_case(metric, quantus_metric, cnn_batch, **call):
    """Ours, and Quantus fed our perturbations; returns both per-sample vectors."""
    from metrics._common import sample_ids

    model, x, y, a = cnn_batch
    ours = metric(model, x, y, a, explainer=gradient)
    xs = metric.perturbed(model, x, y, sample_ids(len(x), {}, x.device))
    replay = Replay(xs)
    quantus_metric.perturb_func = replay
    theirs = quantus_metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), explain_func=quantus_explainer,
                            device="cpu", **call)
    assert replay.calls == metric.n_samples                # Quantus used each of our draws exactly once
    return ours, torch.tensor(np.asarray(theirs, dtype=np.float64))


def test_max_and_average_sensitivity_match_quantus_on_our_draws(cnn_batch):
    from metrics.average_sensitivity import AverageSensitivity
    from metrics.max_sensitivity import MaxSensitivity

    q = dict(nr_samples=6, abs=False, normalise=False, disable_warnings=True)
    for cls, qcls in ((MaxSensitivity, quantus.MaxSensitivity), (AverageSensitivity, quantus.AvgSensitivity)):
        ours, theirs = robustness_case(cls(radius=0.2, n_samples=6, seed=4), qcls(**q), cnn_batch)
        assert (theirs > 0).all()                          # the perturbations change the gradient: not a trivial 0 = 0
        torch.testing.assert_close(ours.scores.double(), theirs, atol=1e-5, rtol=1e-5)
        # Yeh et al.'s unnormalised definition: Quantus with a denominator of 1
        ours, theirs = robustness_case(cls(radius=0.2, n_samples=6, seed=4, normalise=False),
                                       qcls(norm_denominator=lambda a: np.ones(a.shape[0]), **q), cnn_batch)
        torch.testing.assert_close(ours.scores.double(), theirs, atol=1e-5, rtol=1e-5)


def test_local_lipschitz_and_continuity_match_quantus_on_our_draws(cnn_batch):
    """Our continuity (Montavon et al.'s L1 / L2 quotient) is Quantus's LocalLipschitzEstimate with an L1 numerator;
    Quantus's own Continuity (translations, patch-sum correlation) is a different quantity and is not compared."""
    from metrics.continuity import Continuity
    from metrics.local_lipschitz import LocalLipschitz

    q = dict(nr_samples=5, abs=False, normalise=False, disable_warnings=True)
    ours, theirs = robustness_case(LocalLipschitz(radius=0.2, n_samples=5, seed=2), quantus.LocalLipschitzEstimate(**q), cnn_batch)
    assert (theirs > 0).all()
    torch.testing.assert_close(ours.scores.double(), theirs, atol=1e-5, rtol=1e-5)
    from quantus.functions.similarity_func import distance_manhattan
    ours, theirs = robustness_case(Continuity(radius=0.2, n_samples=5, seed=2),
                                   quantus.LocalLipschitzEstimate(norm_numerator=distance_manhattan, **q), cnn_batch)
    torch.testing.assert_close(ours.scores.double(), theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["input", "representation", "output"])
def test_relative_stability_matches_quantus_on_our_draws(cnn_batch, kind):
    """Small radius: no perturbation changes a prediction (Quantus's np.max makes a sample NaN when one does)."""
    from metrics.relative_stability import RelativeStability

    metric = RelativeStability(kind=kind, radius=0.01, n_samples=4, seed=1, eps=1e-6, eps_min=1e-6)
    q = dict(nr_samples=4, abs=False, normalise=False, disable_warnings=True, eps_min=1e-6)
    qm = {"input": lambda: quantus.RelativeInputStability(**q),
          "output": lambda: quantus.RelativeOutputStability(**q),
          # our representation is the input of the last nn.Linear = the output of the Flatten (layer "6") before it
          "representation": lambda: quantus.RelativeRepresentationStability(layer_names=["6"], **q)}[kind]()
    ours, theirs = robustness_case(metric, qm, cnn_batch, softmax=False)
    assert (ours.extras["kept"] == 1).all() and (theirs > 0).all()
    torch.testing.assert_close(ours.scores.double(), theirs, atol=1e-4, rtol=1e-4)


def quantus_faithfulness_correlation(metric, model, x, y, a, fraction: float, stream: int) -> torch.Tensor:
    """Quantus's FaithfulnessCorrelation on our subsets of ``fraction`` of the pixels (baseline 0 = our ``mean``)."""
    n, numel = len(x), x[0, 0].numel()
    size = max(1, round(fraction * numel))
    q = quantus.FaithfulnessCorrelation(nr_runs=metric.n_perturbations, subset_size=size, perturb_baseline=0.0, abs=False,
                                        normalise=False, return_aggregate=False, disable_warnings=True)
    with our_subsets(metric, n, numel, size, stream) as choice:
        out = q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu", softmax=False)
    assert choice.calls == n * metric.n_perturbations
    return torch.tensor(np.asarray(out, dtype=np.float64))


def test_faithfulness_correlation_matches_quantus_on_our_subsets(monkeypatch, cnn_batch):
    from metrics.faithfulness_correlation import FaithfulnessCorrelation

    model, x, y, a = cnn_batch
    a = a * x                                     # gradient x input: a map that correlates with the drops, not 0 or 1
    metric = FaithfulnessCorrelation(subset_size=0.2, n_perturbations=12, seed=5)
    ours = metric(model, x, y, a).scores
    theirs = quantus_faithfulness_correlation(metric, model, x, y, a, 0.2, stream=20)
    assert theirs.abs().min() > 0.05 and theirs.abs().max() < 0.999
    torch.testing.assert_close(ours.double(), theirs, atol=1e-5, rtol=1e-5)


def test_sensitivity_n_is_faithfulness_correlation_per_size_and_quantus_sensitivity_n_is_another_quantity(monkeypatch):
    """Each point of our Sensitivity-N curve equals Quantus's FaithfulnessCorrelation on the same subsets of that size
    (Ancona et al.'s definition: a Pearson correlation over random subsets of N features, per sample).

    Quantus 0.6's SensitivityN computes something else: it removes the *top* features in attribution order
    cumulatively, correlates, per step n and *across the samples of the batch*, the attribution of the n-th feature
    alone with the cumulative drop, and keeps only the first batch. Analytic case: on a linear model the exact map
    x . w is Sensitivity-N for every N (ours: 1 at every size), while Quantus's value is 1 at n = 1 only."""
    from metrics.sensitivity_n import SensitivityN

    gen = torch.Generator().manual_seed(1)
    model = LinearModel(channels=1, size=6, bias=False).eval()
    x = torch.randn(5, 1, 6, 6, generator=gen)
    y = model(x).argmax(1)
    exact = x * model.linear.weight[y].view(-1, 1, 6, 6).detach()
    noisy = exact + 0.3 * torch.randn(x.shape, generator=gen) * exact.abs().mean()
    metric = SensitivityN(fractions=[0.1, 0.3], n_perturbations=8, seed=2)
    res = metric(model, x, y, noisy)
    for k, f in enumerate(metric.fractions):
        theirs = quantus_faithfulness_correlation(metric, model, x, y, noisy, f, stream=30 + k)
        torch.testing.assert_close(res.curves[:, k].double(), theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(SensitivityN(n_perturbations=8, seed=2)(model, x, y, exact).scores, torch.ones(5), atol=1e-5, rtol=0)
    q = quantus.SensitivityN(features_in_step=1, n_max_percentage=0.5, perturb_baseline=0.0, abs=False, normalise=False,
                             return_aggregate=False, disable_warnings=True)
    theirs = np.asarray(q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=exact.numpy(), device="cpu", softmax=False))
    assert theirs.shape == (18,)                  # one value per step n, not per sample
    assert abs(theirs[0] - 1) < 1e-5 and (np.abs(theirs[1:] - 1) > 1e-3).all()


def test_random_logit_matches_quantus_on_our_other_class(monkeypatch, cnn_batch):
    """Our other class c' replayed into Quantus's np.random.randint (an index into the other classes, ascending).
    Spearman of the signed and of the absolute maps agree; SSIM differs by design (Quantus flattens the maps and
    runs a 1-D SSIM along the raster order; ours is 2-D SSIM of min-max normalised |maps|), so it is not compared."""
    from quantus.functions.similarity_func import correlation_spearman

    from metrics.random_logit import RandomLogit

    model, x, y, a = cnn_batch
    res = RandomLogit(seed=3)(model, x, y, a, explainer=gradient)
    other = res.extras["other_class"].long()
    assert (other != y).all()
    index = torch.where(other < y, other, other - 1).numpy()       # position of c' among the other classes
    monkeypatch.setattr(np.random, "randint", lambda lo, hi, size: index)
    for key, absolute in (("spearman", False), ("spearman_abs", True)):
        q = quantus.RandomLogit(num_classes=3, similarity_func=correlation_spearman, abs=absolute, normalise=False, disable_warnings=True)
        theirs = q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), explain_func=quantus_explainer, device="cpu")
        torch.testing.assert_close(res.extras[key].double(), torch.tensor(np.asarray(theirs, dtype=np.float64)), atol=1e-5, rtol=1e-5)


def test_efficient_mprt_matches_quantus_on_our_randomised_model(monkeypatch, cnn_batch):
    """Quantus's score is (H_after - H_before) / H_before = ours - 1; its extra scores_fraction_explanation is ours."""
    from metrics.efficient_mprt import EfficientMPRT
    from metrics.randomization import Randomization

    model, x, y, a = cnn_batch
    metric = EfficientMPRT(n_bins=20, seed=7)
    ours = metric(model, x, y, a, explainer=gradient).scores.double()
    randomised = metric.randomised(model)
    q = quantus.EfficientMPRT(complexity_func_kwargs={"n_bins": 20}, compute_extra_scores=True, abs=False, normalise=False,
                              disable_warnings=True)
    with our_stages([(name, randomised) for name, _ in Randomization.layers(model)]):
        theirs = q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), explain_func=quantus_explainer, device="cpu")
    assert (ours - 1).abs().min() > 1e-3                    # the randomisation changes the entropy
    torch.testing.assert_close(ours - 1, torch.tensor(np.asarray(theirs, dtype=np.float64)), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ours, torch.tensor(q.scores_extra["scores_fraction_explanation"], dtype=torch.float64), atol=1e-6, rtol=1e-6)


def test_smooth_mprt_matches_quantus_on_our_noise_and_randomised_models(monkeypatch, cnn_batch):
    """Quantus's smoothing averages nr_samples - 1 noisy copies *and the clean input*; ours n_noise noisy copies.
    Quantus gets nr_samples = n_noise + 1, our noise through np.random.randn, and an explainer that returns 0 for the
    clean copy and rescales the others by (n + 1) / n: its average is then ours. Quantus compares every stage with
    the a_batch passed in (not its own smoothed original), so it gets our smoothed original.

    Quantus 0.6 ignores the explain_func inside the smoothing: it calls ``quantus.explain`` (a vanilla gradient
    unless explain_func_kwargs name a method), shown below by the zero explainer having no effect; the comparison
    therefore replaces ``quantus.explain`` in its module."""

    from metrics._common import sample_ids
    from metrics.smooth_mprt import NoiseAveraged, SmoothMPRT

    model, x, y, a = cnn_batch
    n_noise = 3
    metric = SmoothMPRT(n_noise=n_noise, noise_level=0.1, seed=2)
    res = metric(model, x, y, a, explainer=gradient)
    ids = sample_ids(len(x), {}, x.device)
    smooth = NoiseAveraged(gradient, n_noise, 0.1, metric.seed, ids)
    smoothed, unit = smooth(model, x, y), smooth.unit_noise(x)
    stages = stage_copies(metric, model)
    draws = {"k": 0}

    def randn(*shape):                        # Quantus multiplies by its std = 0.1 x (max - min), as ours
        k = draws["k"] % n_noise
        draws["k"] += 1
        return unit[k].double().numpy()

    calls = {"k": 0}

    def explain(model, inputs, targets, **kwargs):
        k = calls["k"] % (n_noise + 1)
        calls["k"] += 1
        g = quantus_explainer(model, inputs, targets)
        return np.zeros_like(g) if k == n_noise else g * (n_noise + 1) / n_noise

    monkeypatch.setattr(np.random, "randn", randn)
    zero = lambda model, inputs, targets, **kw: np.zeros(np.shape(inputs), dtype=np.float32)  # noqa: E731
    q = quantus.SmoothMPRT(nr_samples=2, abs=True, normalise=False, disable_warnings=True)
    with pytest.warns(UserWarning, match="vanilla 'Gradient'"):
        q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), explain_func=zero, device="cpu")
    assert calls["k"] == 0
    import quantus.metrics.randomisation.smooth_mprt as quantus_smooth_mprt
    monkeypatch.setattr(quantus_smooth_mprt.quantus, "explain", explain)
    draws["k"] = 0
    q = quantus.SmoothMPRT(nr_samples=n_noise + 1, noise_magnitude=0.1, abs=True, normalise=False, disable_warnings=True)
    with our_stages(stages):
        theirs = q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=smoothed.numpy(), explain_func=explain, device="cpu")
    np.testing.assert_allclose(theirs.pop("original"), 1, atol=1e-6)   # Quantus's smoothed original is ours
    assert list(theirs) == [name for name, _ in stages]
    curves = torch.tensor(np.array(list(theirs.values()), dtype=np.float64)).T
    torch.testing.assert_close(res.curves.double(), curves, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(res.scores.double(), curves.mean(1), atol=1e-5, rtol=1e-5)
    # Quantus's return_average_correlation skips a key "orig" but stores "original": its average includes the
    # similarity of the original with itself (1 here), so it is (L x ours + 1) / (L + 1), not the stages' mean
    draws["k"] = calls["k"] = 0
    q = quantus.SmoothMPRT(nr_samples=n_noise + 1, noise_magnitude=0.1, abs=True, normalise=False, return_average_correlation=True,
                           disable_warnings=True)
    with our_stages(stages):
        average = q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=smoothed.numpy(), explain_func=explain, device="cpu")
    n_layers = len(stages)
    torch.testing.assert_close(torch.tensor(average, dtype=torch.float64), (n_layers * curves.mean(1) + 1) / (n_layers + 1),
                               atol=1e-5, rtol=1e-5)


# ---- the deterministic axioms, IROF and sufficiency ---------------------------------------------------------------


def test_non_sensitivity_matches_quantus_where_unused_features_have_exactly_no_effect():
    """Quantus counts |Z xor U| with absolute thresholds (|a| < eps after normalising by the max, |drop| < eps); ours
    is the same set difference with thresholds relative to the largest |a| and |drop|, as a fraction of the features.
    On a linear model whose zero-weight pixels have no effect at all the two sets coincide: ours x F = Quantus's."""
    from metrics.non_sensitivity import NonSensitivity

    gen = torch.Generator().manual_seed(4)
    model = LinearModel(channels=1, size=6, bias=False).eval()
    with torch.no_grad():
        model.linear.weight[:, ::3] = 0                     # 12 of the 36 pixels are unused by every class
    x = torch.randn(4, 1, 6, 6, generator=gen)
    y = model(x).argmax(1)
    a = x * model.linear.weight[y].view(-1, 1, 6, 6).detach()
    a[:, :, 0, 1] = 0                                       # the map misses a used pixel ...
    a[:, :, 2, 0] += 0.5                                    # ... and credits an unused one
    ours = NonSensitivity(granularity="pixel")(model, x, y, a).scores.double()
    q = quantus.NonSensitivity(eps=1e-5, features_in_step=1, perturb_baseline=0.0, abs=True, normalise=True, disable_warnings=True)
    theirs = q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu", softmax=False)
    assert (ours > 0).all()
    torch.testing.assert_close(ours * 36, torch.tensor(np.asarray(theirs, dtype=np.float64)))


def test_irof_matches_quantus_on_our_segments(monkeypatch):
    """Our feature map (here square patches, one per step) injected as Quantus's superpixels. Quantus's IROF is
    the area over the curve p_k / p_0, k = 1..S, with unit spacing (S - trapz): in units of segments, so an image with
    more segments scores more; ours is normalised to [0, 1] with the k = 0 point: Quantus = S x ours + (1 + r_1) / 2."""
    import quantus.helpers.utils as quantus_utils

    from metrics.irof import IROF

    gen = torch.Generator().manual_seed(2)
    model = LinearModel(channels=1, size=12).eval()
    x = torch.randn(4, 1, 12, 12, generator=gen)
    a = torch.rand(4, 1, 12, 12, generator=gen)
    y = model(x).argmax(1)
    metric = IROF(granularity="patch", patch_size=3, steps=1 / 16)
    res = metric(model, x, y, a)
    fmap, n_feat = metric.feature_map(x, {})
    assert (n_feat == 16).all() and res.curves.shape[1] == 17
    segments = iter(fmap.numpy())
    monkeypatch.setattr(quantus_utils, "get_superpixel_segments", lambda img, segmentation_method: next(segments))
    q = quantus.IROF(perturb_baseline=0.0, abs=False, normalise=False, return_aggregate=False, disable_warnings=True)
    theirs = torch.tensor(np.asarray(q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu", softmax=True),
                                     dtype=np.float64))
    expected = 16 * res.scores.double() + (1 + res.curves[:, 1].double()) / 2
    torch.testing.assert_close(expected, theirs, atol=1e-4, rtol=1e-5)


def test_sufficiency_matches_quantus_with_the_cosine_distance(monkeypatch):
    """Quantus with distance_func="cosine" (scipy cdist, once its V=None argument is dropped) on raw maps is ours; a sample with no neighbour scores 0 in
    Quantus (it divides by inf), which reads as "every neighbour disagrees"; ours is NaN and counted as dropped."""
    from metrics.sufficiency import Sufficiency

    gen = torch.Generator().manual_seed(3)
    model = LinearModel(channels=1, size=6).eval()
    x = torch.randn(8, 1, 6, 6, generator=gen)
    y = model(x).argmax(1)
    base = torch.randn(2, 1, 6, 6, generator=gen)
    a = base[torch.arange(8) % 2] + 0.4 * torch.randn(8, 1, 6, 6, generator=gen)   # two families of similar maps
    a[7] = torch.randn(1, 6, 6, generator=gen)                                     # one map close to no other
    res = Sufficiency(threshold=0.3)(model, x, y, a)
    import quantus.metrics.faithfulness.sufficiency as quantus_sufficiency
    from scipy.spatial.distance import cdist
    # Quantus always passes V=None to cdist, which only "seuclidean" accepts: every other distance_func raises
    with pytest.raises(TypeError):
        quantus.Sufficiency(distance_func="cosine", disable_warnings=True)(model=model, x_batch=x.numpy(), y_batch=y.numpy(),
                                                                          a_batch=a.numpy(), device="cpu")
    monkeypatch.setattr(quantus_sufficiency, "cdist", lambda xa, xb, metric, V=None: cdist(xa, xb, metric))
    q = quantus.Sufficiency(threshold=0.3, distance_func="cosine", abs=False, normalise=False, disable_warnings=True)
    theirs = torch.tensor(np.asarray(q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu"), dtype=np.float64))
    lonely = res.extras["neighbours"] == 0
    assert lonely[7] and lonely.sum() < 8 and res.scores[lonely].isnan().all() and (theirs[lonely] == 0).all()
    torch.testing.assert_close(res.scores[~lonely].double(), theirs[~lonely])


def test_input_invariance_verdicts_match_quantus_on_an_unpadded_convolution():
    """Same verdict per sample (Quantus: maps equal to atol 1e-4; ours: relative change <= tolerance): the gradient
    is invariant, gradient x input is not (here: Quantus never shifts the first input value, see below, which
    changes its verdict when that pixel flips a ReLU). On a *padded* convolution Quantus's compensation is wrong: it subtracts
    the smallest response to the shift (a border value) from every output, so its shifted model is another function;
    ours compensates the border exactly and verifies f'(x + m) = f(x)."""
    from quantus.helpers.model.pytorch_model import PyTorchModel

    from metrics.input_invariance import InputInvariance

    def net(padding):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=padding), torch.nn.ReLU(), torch.nn.Flatten(),
                                   torch.nn.Linear(4 * (8 - 2 + 2 * padding) ** 2, 3)).eval()

    model = net(0)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(1)
    metric = InputInvariance(shift=-1.0, tolerance=1e-4)
    for explain, invariant in ((gradient, True), (lambda m, i, t: gradient(m, i, t) * torch.as_tensor(i), False)):
        a = explain(model, x, y)
        ours = metric(model, x, y, a, explainer=explain).extras["invariant"]
        q = quantus.InputInvariance(input_shift=-1.0, abs=False, normalise=False, disable_warnings=True)
        theirs = q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu",
                   explain_func=lambda model, inputs, targets, **kw: explain(model, torch.as_tensor(inputs), torch.as_tensor(targets)).numpy())
        assert ours.bool().tolist() == [invariant] * 4 == [bool(v) for v in theirs]
    # Quantus's perturb_batch passes indices[i][1:]: the first input value of every image is never shifted
    from functools import partial

    from quantus.functions.perturb_func import baseline_replacement_by_shift, perturb_batch
    flat = x.reshape(4, -1).numpy()
    shifted = perturb_batch(perturb_func=partial(baseline_replacement_by_shift, input_shift=-1.0), indices=np.tile(np.arange(flat.shape[1]), (4, 1)),
                            indexed_axes=np.arange(0, 3), arr=x.numpy().copy()).reshape(4, -1)
    assert (shifted[:, 0] == flat[:, 0]).all() and np.allclose(shifted[:, 1:], flat[:, 1:] - 1)
    padded = net(1)
    wrapped = PyTorchModel(padded, channel_first=True, softmax=False, device="cpu")
    shifted = wrapped.add_mean_shift_to_first_layer(-1.0, (1, 1, 8, 8))
    with torch.no_grad():
        assert (shifted(x - 1.0) - padded(x)).abs().max() > 1e-2                     # Quantus's f' is not f
        assert (metric.shifted_model(padded, x)(x - 1.0) - padded(x)).abs().max() < 1e-4   # ours is


# ---- the first round's metrics with a Quantus counterpart ------------------------------------------------------


def test_sparseness_pointing_game_and_mask_accuracies_match_quantus(batch):
    """Positive continuous maps (no ties; Quantus's mass accuracy sums signed values, ours the positive part)."""
    from metrics.pointing_game import PointingGame
    from metrics.relevance_mass import RelevanceMass
    from metrics.relevance_rank import RelevanceRank
    from metrics.sparseness import Sparseness

    model, x, y, a, masks = batch
    off = dict(abs=False, normalise=False, disable_warnings=True)
    torch.testing.assert_close(Sparseness()(model, x, y, a).scores, run(quantus.Sparseness(**off), model, x, y, a), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(PointingGame()(model, x, y, a, masks=masks).scores, run(quantus.PointingGame(**off), model, x, y, a, masks))
    torch.testing.assert_close(RelevanceMass()(model, x, y, a, masks=masks).scores,
                               run(quantus.RelevanceMassAccuracy(**off), model, x, y, a, masks), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(RelevanceRank(seed=0)(model, x, y, a, masks=masks).scores,
                               run(quantus.RelevanceRankAccuracy(**off), model, x, y, a, masks), atol=1e-6, rtol=1e-6)


def test_cascading_randomisation_matches_quantus_mprt_on_our_randomised_models(monkeypatch, cnn_batch):
    """MPRT (top-down cascade, Spearman of |maps|) stage by stage, our re-initialised models injected."""

    from metrics.randomization import Randomization

    model, x, y, a = cnn_batch
    metric = Randomization(similarity="spearman_abs", seed=3)
    res = metric(model, x, y, a, explainer=gradient)
    stages = stage_copies(metric, model)
    q = quantus.MPRT(layer_order="top_down", abs=True, normalise=False, disable_warnings=True)
    with our_stages(stages):
        theirs = q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), explain_func=quantus_explainer, device="cpu")
    np.testing.assert_allclose(theirs.pop("original"), 1, atol=1e-6)
    assert list(theirs) == [name for name, _ in stages]
    torch.testing.assert_close(res.curves.double(), torch.tensor(np.array(list(theirs.values()), dtype=np.float64)).T, atol=1e-5, rtol=1e-5)


def test_quantus_relative_stability_drops_a_whole_sample_when_one_draw_changes_the_prediction():
    """Some draws change the prediction (a linear model, gradient x input, radius 0.5). Quantus sets those draws NaN
    and takes np.max, so the whole sample is NaN; ours is the maximum over the draws that keep the prediction
    (Agarwal et al.'s neighbourhood), and equals Quantus's where every draw keeps it."""
    from metrics.relative_stability import RelativeStability

    model = LinearModel(channels=1, size=8).eval()
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    y = model(x).argmax(1)
    gxi = lambda m, i, t: gradient(m, i, t) * torch.as_tensor(i)  # noqa: E731
    metric = RelativeStability(kind="input", radius=0.5, n_samples=8, seed=1)
    ours = metric(model, x, y, gxi(model, x, y), explainer=gxi)
    q = quantus.RelativeInputStability(nr_samples=8, eps_min=1e-6, abs=False, normalise=False, disable_warnings=True)
    q.perturb_func = Replay(metric.perturbed(model, x, y, torch.arange(4)))
    theirs = torch.tensor(np.asarray(q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=gxi(model, x, y).numpy(), device="cpu",
                                       explain_func=lambda model, inputs, targets, **kw: gxi(model, inputs, targets).numpy(), softmax=False),
                                     dtype=np.float64))
    kept = ours.extras["kept"]
    partly = (kept > 0) & (kept < 1)
    assert partly.any() and theirs[partly].isnan().all() and ours.scores[partly].isfinite().all()
    whole = kept == 1
    assert whole.any()
    torch.testing.assert_close(ours.scores[whole].double(), theirs[whole], atol=1e-4, rtol=1e-4)


def test_infidelity_matches_quantus_with_our_noise_as_its_patch_perturbations(cnn_batch):
    """Quantus's Infidelity perturbs patch after patch (cumulatively, by a baseline) and takes the MSE between the
    drops and a . (x - x_perturbed) over the patches. Its perturb_func returning x - I_j for our j-th draw (one draw
    per patch position: 16 patches of 2 x 2 on 8 x 8) makes each term Yeh et al.'s (I_j . a - (f(x) - f(x - I_j)))^2,
    and the MSE over the patches our mean over the draws."""
    from metrics.infidelity import Infidelity

    model, x, y, a = cnn_batch
    metric = Infidelity(noise_std=0.2, n_perturbations=16, seed=3)
    ours = metric(model, x, y, a).scores.double()
    draws = x.unsqueeze(1) - metric.noise(x, torch.arange(len(x)))                      # (N, 16, C, H, W)
    replay = Replay(draws.transpose(0, 1))
    q = quantus.Infidelity(perturb_patch_sizes=[2], n_perturb_samples=1, perturb_func=replay, abs=False, normalise=False,
                           disable_warnings=True)
    theirs = q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu", softmax=False)
    assert replay.calls == 16 and (ours > 0).all()
    torch.testing.assert_close(ours, torch.tensor(np.asarray(theirs, dtype=np.float64)), atol=1e-5, rtol=1e-5)


# ---- deletion (PixelFlipping), ROAD, conservation (Completeness), weighted attribution localisation ------------------


def flipping_case(size: int = 12):
    """Non-negative images with minimum 0 (Quantus's "black" = the image minimum = our zero substrate) and continuous maps."""
    gen = torch.Generator().manual_seed(3)
    model = LinearModel(channels=1, size=size).eval()
    x = torch.rand(4, 1, size, size, generator=gen)
    x[:, :, 0, 0] = 0
    a = torch.rand(4, 1, size, size, generator=gen)
    return model, x, model(x).argmax(1), a


@pytest.mark.parametrize("features_in_step", [1, 4])
def test_deletion_curve_matches_quantus_pixel_flipping_and_its_auc_is_ours_rescaled(features_in_step):
    """Per step the curves are equal (Quantus's starts after the first step: ours[:, 1:]). Its AUC is np.trapz with
    dx = 1 without the unperturbed point, so with K steps and curve p_0..p_K: Quantus = K * ours - (p_0 + p_1) / 2."""
    from metrics.deletion import Deletion

    model, x, y, a = flipping_case()
    k = 144 // features_in_step
    res = Deletion(steps=features_in_step / 144, substrate="zero", abpc=False, seed=0)(model, x, y, a)
    args = dict(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu", softmax=True)
    common = dict(features_in_step=features_in_step, abs=False, normalise=False, perturb_baseline="black", disable_warnings=True)
    curve = torch.tensor(np.asarray(quantus.PixelFlipping(**common)(**args))).float()
    assert res.curves.shape == (4, k + 1) and curve.shape == (4, k)
    torch.testing.assert_close(res.curves[:, 1:], curve, atol=1e-6, rtol=1e-6)
    auc = torch.tensor(np.asarray(quantus.PixelFlipping(return_auc_per_sample=True, **common)(**args))).double()
    p = res.curves.double()
    torch.testing.assert_close(auc, k * res.scores.double() - (p[:, 0] + p[:, 1]) / 2, atol=1e-4, rtol=1e-5)


def test_quantus_pixel_flipping_auc_grows_with_the_number_of_steps_on_a_constant_model():
    """Analytic: a model with constant output 1/C (zero weights and biases) has deletion AUC 1/C on a [0, 1] axis at any
    step size (ours). Quantus's np.trapz(dx=1) over K points gives (K - 1) / C: 143/3 at 1 pixel a step, 35/3 at 4."""
    from metrics.deletion import Deletion

    _, x, _, a = flipping_case()
    model = LinearModel(channels=1, size=12).eval()
    torch.nn.init.zeros_(model.linear.weight)
    torch.nn.init.zeros_(model.linear.bias)
    y = torch.zeros(4, dtype=torch.long)
    for step in (1, 4):
        ours = Deletion(steps=step / 144, substrate="zero", abpc=False, seed=0)(model, x, y, a).scores
        torch.testing.assert_close(ours, torch.full((4,), 1 / 3))
        q = quantus.PixelFlipping(features_in_step=step, abs=False, normalise=False, return_auc_per_sample=True, disable_warnings=True)
        theirs = q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu", softmax=True)
        np.testing.assert_allclose(theirs, (144 // step - 1) / 3, rtol=1e-6)


def road_case():
    gen = torch.Generator().manual_seed(3)
    model = LinearModel(channels=1, size=12).eval()
    x = torch.randn(4, 1, 12, 12, generator=gen)
    a = torch.rand(4, 1, 12, 12, generator=gen)
    return model, x, model(x).argmax(1), a


def road_images(model, metric, x, y, a):
    """Our ROAD result and the images it passed through the model: clean (N), then MoRF and LeRF, each (N, P, ...)."""
    seen = []
    hook = model.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
    try:
        res = metric(model, x, y, a)
    finally:
        hook.remove()
    images = torch.cat(seen)
    n, p = x.shape[0], len(metric.percentages)
    assert images.shape[0] == n + 2 * n * p
    return res, images[n:n + n * p].view(n, p, *x.shape[1:])


def test_road_imputation_matches_quantus_noisy_linear_imputation_at_noise_zero():
    """The same masks (the top p % of the map) imputed by Quantus's sparse direct solve (spsolve) and by our conjugate
    gradients, both without noise: equal to 1e-4 (our solver stops at a max-norm residual of 1e-5; measured 4e-5), and
    so are the accuracies per percentage. Quantus passes only the imputed images (no clean pass) and MoRF only."""
    from metrics.road import ROAD

    model, x, y, a = road_case()
    pct = [10, 25, 50, 75]          # p % of 144 pixels is a whole number or rounds down: both count the same pixels
    res, ours = road_images(model, ROAD(percentages=pct, noise=0, target="explained", chunk_size=1000, seed=0), x, y, a)
    seen = []
    hook = model.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
    try:
        acc = quantus.ROAD(percentages=pct, noise=0, abs=False, normalise=False, disable_warnings=True)(
            model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu")
    finally:
        hook.remove()
    theirs = torch.cat(seen).float().view(len(pct), 4, 1, 12, 12).transpose(0, 1)   # one batch per percentage
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
    assert list(acc) == pct
    torch.testing.assert_close(torch.tensor([float(acc[p]) for p in pct]), res.curves.mean(0))


class RoadReplay:
    """Quantus ROAD's perturb_func: our imputed image for (percentage j, sample i), in Quantus's call order (for each
    percentage, for each sample), recording the pixel indices Quantus asked to remove."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images, self.calls, self.indices = images, 0, []

    def __call__(self, arr, indices, **kwargs):
        j, i = divmod(self.calls, self.images.shape[0])
        self.calls += 1
        self.indices.append((i, j, np.sort(np.asarray(indices))))
        return self.images[i, j].numpy().reshape(arr.shape).astype(arr.dtype)


def test_road_accuracies_match_quantus_on_our_noisy_imputations_and_quantus_floors_the_pixel_count():
    """Our noisy imputations (noise 0.01) handed to Quantus as its perturb_func: its accuracy per percentage is our MoRF
    curve's mean. Quantus removes int(p % of the pixels) (floor), ours round(p % of them): at 70 % of 144 = 100.8 it
    removes 100 pixels and we 101; elsewhere both remove exactly the pixels that our image changes."""
    from metrics.road import ROAD

    model, x, y, a = road_case()
    pct = [10, 25, 50, 70]
    res, ours = road_images(model, ROAD(percentages=pct, target="explained", chunk_size=1000, seed=0), x, y, a)
    replay = RoadReplay(ours)
    acc = quantus.ROAD(percentages=pct, abs=False, normalise=False, perturb_func=replay, disable_warnings=True)(
        model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu")
    assert replay.calls == 4 * len(pct)
    torch.testing.assert_close(torch.tensor([float(acc[p]) for p in pct]), res.curves.mean(0))
    for i, j, removed in replay.indices:
        changed = np.flatnonzero((ours[i, j] != x[i]).reshape(-1).numpy())
        if pct[j] == 70:
            assert len(removed) == 100 and len(changed) == 101 and set(removed) < set(changed)
        else:
            np.testing.assert_array_equal(removed, changed)


def test_quantus_road_averages_only_the_first_batch():
    """Exact: a constant model (zero weights, bias favouring class 0) keeps predicting class 0 whatever is imputed, so
    with labels [0, 0, 1, 1] the accuracy is 0.5 at every percentage. Quantus averages only its first batch
    (evaluation_scores[0]): with batch_size=2 it reports 1.0. Ours scores every sample."""
    from metrics.road import ROAD

    _, x, _, a = road_case()
    model = LinearModel(channels=1, size=12).eval()
    torch.nn.init.zeros_(model.linear.weight)
    with torch.no_grad():
        model.linear.bias.copy_(torch.tensor([1.0, 0.0, 0.0]))
    labels = torch.tensor([0, 0, 1, 1])
    pct = [10, 50, 90]
    ours = ROAD(percentages=pct, chunk_size=1000, seed=0)(model, x, labels, a, labels=labels)
    torch.testing.assert_close(ours.curves.mean(0), torch.full((3,), 0.5))
    acc = quantus.ROAD(percentages=pct, abs=False, normalise=False, disable_warnings=True)(
        model=model, x_batch=x.numpy(), y_batch=labels.numpy(), a_batch=a.numpy(), device="cpu", batch_size=2)
    assert [float(acc[p]) for p in pct] == [1.0, 1.0, 1.0]


def test_quantus_road_fails_on_rgb_images_and_ours_scores_them():
    """Quantus ROAD ranks the map broadcast to every channel value (3 H W indices) but imputes per pixel (H W): on RGB
    it indexes out of bounds. Ours ranks pixels by the channel-pooled map and imputes all channels of a pixel."""
    from metrics.road import ROAD

    model = LinearModel(channels=3, size=8).eval()
    gen = torch.Generator().manual_seed(3)
    x, a = torch.randn(2, 3, 8, 8, generator=gen), torch.rand(2, 1, 8, 8, generator=gen)
    y = model(x).argmax(1)
    with pytest.raises(IndexError):
        quantus.ROAD(percentages=[10, 50], abs=False, normalise=False, disable_warnings=True)(
            model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu")
    res = ROAD(percentages=[10, 50], target="explained", chunk_size=100, seed=0)(model, x, y, a)
    assert res.curves.shape == (2, 2) and torch.isfinite(res.curves).all()


class ZeroBaseline:
    """An explainer stand-in whose baseline is the black image (Quantus Completeness's "black": the image minimum, 0 here)."""

    def baseline(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(inputs)


def test_conservation_is_the_continuous_error_quantus_completeness_reduces_to_exact_float_equality():
    """Analytic, on a linear model f(x) = W x + b with the black baseline: the exact map w_c * x (integrated gradients
    = gradient x input here) conserves f_c(x) - f_c(0) up to float32 rounding (our relative error < 1e-6), yet Quantus
    says False (a == comparison of two float32 sums); half that map is 50 % off and Quantus says False too. A map that
    puts the whole gap, as float32 Quantus computes it, on one pixel is the only kind it calls True."""
    from metrics.conservation import Conservation

    model, x, y, _ = flipping_case()
    exact = x * model.linear.weight[y].detach().view(-1, 1, 12, 12)
    gap = (model(x) - model(torch.zeros_like(x))).detach().gather(1, y.view(-1, 1)).squeeze(1)
    one_pixel = torch.zeros_like(x)
    one_pixel[:, 0, 5, 5] = gap
    q = quantus.Completeness(abs=False, normalise=False, disable_warnings=True)
    metric = Conservation(bias_share=False)

    def both(a):
        ours = metric(model, x, y, a, explainer=ZeroBaseline()).scores
        return ours, np.asarray(q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu"))

    ours, theirs = both(exact)
    assert (ours < 1e-6).all() and not theirs.all()
    ours, theirs = both(exact / 2)
    torch.testing.assert_close(ours, torch.full((4,), 0.5), atol=1e-6, rtol=0)
    assert not theirs.any()
    ours, theirs = both(one_pixel)
    assert (ours < 1e-6).all() and theirs.all()


@pytest.mark.parametrize("n", [3, 4])
def test_quantus_weighted_attribution_localisation_depends_on_the_batch_size(n):
    """Analytic: a map of uniform density with a mask of 36 of 144 pixels has mu = 0.25 and weighted
    mu_w = mu * 144 / 36 = 1 (Kohlbrenner et al.: a uniform map scores 1), in any batch. Quantus 0.6 multiplies mu by S_in / x_batch[2:].size,
    the values of the batch after its second image: 0.25 * 36 / ((n - 2) * 144), another number for every batch size."""
    model = LinearModel(channels=1, size=12).eval()
    x = torch.rand(n, 1, 12, 12, generator=torch.Generator().manual_seed(3))
    # Quantus refuses a uniform map (asserts.py: "uniformly distributed"): a checkerboard of 0.25 / 0.75 has the same
    # mean density inside the 6 x 6 mask as outside, so it scores as a uniform map does
    rows, cols = torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")
    a = (0.25 + 0.5 * ((rows + cols) % 2)).expand(n, 1, 12, 12).clone()
    masks = torch.zeros(n, 1, 12, 12, dtype=torch.bool)
    masks[:, :, 3:9, 3:9] = True
    y = model(x).argmax(1)
    unweighted = AttributionLocalisation()(model, x, y, a, masks=masks).scores
    ours = AttributionLocalisation(weighted=True)(model, x, y, a, masks=masks).scores
    torch.testing.assert_close(unweighted, torch.full((n,), 0.25))
    torch.testing.assert_close(ours, torch.ones(n))
    theirs = run(quantus.AttributionLocalisation(weighted=True, abs=False, normalise=False, disable_warnings=True), model, x, y, a, masks)
    torch.testing.assert_close(theirs, torch.full((n,), 0.25 * 36 / ((n - 2) * 144)), atol=1e-6, rtol=1e-5)
