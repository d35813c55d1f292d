"""Meta-evaluation: can a metric be trusted on this model and data? (MetaQuantus-style checks,
Hedstroem, Bommer, Wickstroem, Samek, Lapuschkin & Hoehne, "The meta-evaluation problem in
explainable AI: identifying reliable estimators with MetaQuantus", TMLR 2023).

A reliable metric is *resilient* to noise: its scores should not change under a minor
perturbation that keeps the model's behaviour, and *reactive* to adversaries: its scores
should get worse under a disruptive perturbation that destroys it. For every metric, on
the user's model, inputs and several explanation methods:

* perturbations, K of each kind, seeded per draw: of the model's parameters (``space:
  model``, default) theta' = theta (1 + s eps), eps ~ N(0, 1), or of the inputs (``space:
  input``) x' = x + s (max x - min x) eps with the model unchanged: *minor* (s =
  ``minor_std``, default 0.01; the fraction of predictions it keeps is logged as
  ``minor_agreement`` and a warning is raised below 0.95) and *disruptive* (s =
  ``disruptive_std``, default 2.0). Each method re-explains the perturbed
  model for the clean model's predicted classes and each metric scores it (on the
  perturbed model, with that method as the context's explainer);
* intra-consistency (per method, over the N samples): with p_k the two-sided Wilcoxon
  signed-rank p-value between the clean and the k-th perturbed per-sample scores,
  IAC_NR = mean p_k over the minor draws (1: no detectable change) and
  IAC_AR = mean (1 - p_k) over the disruptive draws;
* inter-consistency (across methods, per sample): IEC_NR = mean of (tau_a + 1) / 2 with
  tau_a Kendall's tau-a between the methods' clean and minor-perturbed scores of a sample
  (1: the methods' order is kept); IEC_AR = the fraction of (draw, method, sample) whose
  disruptive score is strictly worse than the clean one, in the metric's direction;
* the meta-consistency score MC = mean(IAC_NR, IAC_AR, IEC_NR, IEC_AR) in [0, 1] (MetaQuantus'
  summary; 1 is ideal), with a 95 % Student-t interval over the K perturbation draws (MC is
  exactly the mean of the per-draw MCs, each from draw k's minor and disruptive scores).
  Not a bootstrap over samples: resampling with replacement duplicates samples, which
  biases the Wilcoxon p-values (measured: the interval missed its own point estimate);
* inter-metric agreement: Kendall's tau (scipy.stats.kendalltau, tau-b) between the method
  rankings of every pair of metrics, each ranking by the metric's headline on the clean
  model in its own direction (needs >= 2 methods).

Differences from MetaQuantus (stated, not hidden): MetaQuantus defines inter-consistency
through rank positions of a perturbed explanation among the methods; here IEC_NR uses
Kendall's tau-a and IEC_AR the direction of the score change. Its input-space test perturbs
the inputs for both kinds; ``space: input`` does the same with additive Gaussian noise, and
one call tests one space (run both and read them side by side). Samples whose score is undefined (NaN) in any condition are
left out of that metric's statistics (their number is reported as ``n``). Wilcoxon's
p-value is 1 when every difference is zero (no change), and the statistics use SciPy.
Cost: (1 + 2 K) x methods explanations and metric calls.
"""
from __future__ import annotations

import copy
import itertools
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau, wilcoxon
from scipy.stats import t as t_dist
from torch import nn

from metrics._common import predictions, untouched
from metrics.types import Metric

Explain = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class MetaEvaluation:
    """What :func:`meta_evaluate` returns.

    Args:
        summary (pandas.DataFrame): One row per metric: ``iac_nr``, ``iac_ar``, ``iec_nr``, ``iec_ar``,
            ``mc``, ``mc_ci_low``, ``mc_ci_high``, ``n`` (samples used), ``minor_agreement``.
        agreement (pandas.DataFrame): Kendall's tau between the metrics' method rankings (metric x metric).
        scores (dict): ``scores[metric][condition]`` a (draws, methods, N) float64 array, condition
            ``clean`` (1 draw), ``minor`` or ``disruptive`` (K draws).
    """

    summary: pd.DataFrame
    agreement: pd.DataFrame
    scores: dict[str, dict[str, np.ndarray]]


def perturbed_model(model: nn.Module, std: float, seed: int) -> nn.Module:
    """A deep copy with every parameter multiplied by (1 + std N(0, 1)), seeded (the original is not touched)."""
    work = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in work.parameters():
            p.mul_(1 + std * torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p))
    return work


def perturbed_inputs(inputs: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    """inputs + std x (each image's max - min) x N(0, 1), seeded (drawn on the CPU, so the same on every device)."""
    gen = torch.Generator().manual_seed(seed)
    spread = (inputs.flatten(1).amax(1) - inputs.flatten(1).amin(1)).view(-1, 1, 1, 1)
    return inputs + std * spread * torch.randn(inputs.shape, generator=gen).to(inputs)


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sided Wilcoxon signed-rank p-values along the last axis; 1 where every difference is zero."""
    diff = a - b
    zero = np.all(diff == 0, axis=-1)
    p = np.ones(diff.shape[:-1])
    if (~zero).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p[~zero] = wilcoxon(diff[~zero], axis=-1).pvalue
    return np.nan_to_num(p, nan=1.0)


def tau_a(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-a along axis -2 (the methods) of (..., methods, N) arrays: (..., N)."""
    m = a.shape[-2]
    pairs = list(itertools.combinations(range(m), 2))
    s = sum(np.sign(a[..., i, :] - a[..., j, :]) * np.sign(b[..., i, :] - b[..., j, :]) for i, j in pairs)
    return s / len(pairs)


def consistency(clean: np.ndarray, minor: np.ndarray, disruptive: np.ndarray, higher_is_better: bool) -> dict[str, float]:
    """IAC_NR, IAC_AR, IEC_NR, IEC_AR and MC from (1, E, N), (K, E, N), (K, E, N) scores (module docstring)."""
    out = {
        "iac_nr": float(wilcoxon_p(np.broadcast_to(clean, minor.shape), minor).mean()),
        "iac_ar": float((1 - wilcoxon_p(np.broadcast_to(clean, disruptive.shape), disruptive)).mean()),
    }
    out["iec_nr"] = float(((tau_a(np.broadcast_to(clean, minor.shape), minor) + 1) / 2).mean()) if clean.shape[1] > 1 else math.nan
    worse = disruptive < clean if higher_is_better else disruptive > clean
    out["iec_ar"] = float(worse.mean())
    out["mc"] = float(np.nanmean([out[k] for k in ("iac_nr", "iac_ar", "iec_nr", "iec_ar")]))
    return out


def meta_evaluate(model: nn.Module, inputs: torch.Tensor, explainers: Mapping[str, Explain], metrics: Mapping[str, Metric],
                  context: dict | None = None, n_perturbations: int = 5, minor_std: float = 0.01, disruptive_std: float = 2.0,
                  seed: int = 0, space: str = "model") -> MetaEvaluation:
    """Noise resilience, adversary reactivity and inter-metric agreement of ``metrics`` (module docstring).

    Args:
        model (nn.Module): The model; left as it was found (perturbations act on copies).
        inputs (torch.Tensor): (N, C, H, W) normalised inputs, N >= 2.
        explainers (mapping of str to callable): The explanation methods, ``explainer(model, inputs, targets)``.
        metrics (mapping of str to Metric): The metrics to check.
        context (dict or None, optional): The metrics' context (labels, masks, mean, std, indices, ...);
            ``explainer`` is set per method. Default: None.
        n_perturbations (int, optional): K, draws of each perturbation kind, >= 1 (>= 2 for an interval).
            Default: 5.
        minor_std (float, optional): Std of the minor multiplicative parameter noise, > 0. Default: 0.01.
        disruptive_std (float, optional): Std of the disruptive parameter noise, > minor_std. Default: 2.0.
        seed (int, optional): Seeds the perturbations. Default: 0.
        space (str, optional): What is perturbed: ``model`` (its parameters) or ``input`` (additive noise
            on the inputs, the stds as fractions of each image's value range; the model is unchanged).
            Default: ``model``.
    """
    if space not in ("model", "input"):
        raise ValueError(f"meta_evaluate: space must be 'model' or 'input'; got {space!r}")
    if inputs.shape[0] < 2:
        raise ValueError(f"meta_evaluate needs at least 2 samples (Wilcoxon tests over samples); got {inputs.shape[0]}")
    if not explainers or not metrics:
        raise ValueError("meta_evaluate needs at least one explainer and one metric")
    if not (isinstance(n_perturbations, int) and n_perturbations >= 1):
        raise ValueError(f"meta_evaluate: n_perturbations must be an integer >= 1; got {n_perturbations!r}")
    if not 0 < minor_std < disruptive_std:
        raise ValueError(f"meta_evaluate: need 0 < minor_std < disruptive_std; got {minor_std} and {disruptive_std}")
    context = dict(context or {})
    x = inputs.detach()
    with untouched(model):
        targets = predictions(model, x)
    names, methods = list(metrics), list(explainers)
    scores = {m: {"clean": [], "minor": [], "disruptive": []} for m in names}
    agreement_minor: list[float] = []
    directions: dict[str, bool] = {}
    conditions = [("clean", model, x)]
    for kind, std, offset in (("minor", minor_std, 0), ("disruptive", disruptive_std, 500)):
        for k in range(n_perturbations):
            draw = seed * 1000 + offset + k
            if space == "model":
                conditions.append((kind, perturbed_model(model, std, draw), x))
            else:
                conditions.append((kind, model, perturbed_inputs(x, std, draw)))
    for condition, net, xs in conditions:
        net.eval()
        if condition == "minor":
            with untouched(net):
                agreement_minor.append(float((predictions(net, xs) == targets).float().mean()))
        per_metric = {m: [] for m in names}
        for method in methods:
            explain = explainers[method]
            maps = explain(net, xs, targets).detach()
            for m in names:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")   # per-call notes (dropped samples, start points) would repeat for every draw
                    res = metrics[m](net, xs, targets, maps, **(context | {"explainer": explain}))
                per_metric[m].append(res.scores.double().cpu().numpy())
                directions[m] = res.higher_is_better
        for m in names:
            scores[m][condition].append(np.stack(per_metric[m]))
    agreement = float(np.mean(agreement_minor))
    if agreement < 0.95:
        warnings.warn(f"meta_evaluate: the minor perturbation (std {minor_std}) keeps only {agreement:.0%} of the predictions; "
                      "it is not minor for this model (lower minor_std)", stacklevel=2)
    rows, headlines = [], {}
    for m in names:
        s = {c: np.stack(v) for c, v in scores[m].items()}
        scores[m] = s
        higher = directions[m]
        valid = np.all(np.isfinite(np.concatenate([s["clean"], s["minor"], s["disruptive"]])), axis=(0, 1))
        n = int(valid.sum())
        row = {"metric": m, "n": n, "minor_agreement": agreement}
        if n >= 2:
            c, mi, d = (s[k][..., valid] for k in ("clean", "minor", "disruptive"))
            row |= consistency(c, mi, d, higher)
            per_draw = np.array([consistency(c, mi[k:k + 1], d[k:k + 1], higher)["mc"] for k in range(len(mi))])
            half = t_dist.ppf(0.975, len(per_draw) - 1) * per_draw.std(ddof=1) / math.sqrt(len(per_draw)) if len(per_draw) > 1 else math.nan
            row |= {"mc_ci_low": float(per_draw.mean() - half), "mc_ci_high": float(per_draw.mean() + half)}
            headlines[m] = (c[0].mean(-1) if higher else -c[0].mean(-1))      # (E,) higher = better
        else:
            row |= {k: math.nan for k in ("iac_nr", "iac_ar", "iec_nr", "iec_ar", "mc", "mc_ci_low", "mc_ci_high")}
        rows.append(row)
    tau = pd.DataFrame(np.nan, index=names, columns=names)
    for a in names:
        for b in names:
            if a in headlines and b in headlines and len(methods) >= 2:
                tau.loc[a, b] = 1.0 if a == b else float(kendalltau(headlines[a], headlines[b]).statistic)
    return MetaEvaluation(summary=pd.DataFrame(rows), agreement=tau, scores=scores)
