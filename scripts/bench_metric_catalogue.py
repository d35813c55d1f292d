"""Benchmark of the catalogue's deterministic metrics against Quantus 0.6 (not a test; prints one table).

    python scripts/bench_metric_catalogue.py                  # needs quantus (pip install .[bench])
    python scripts/bench_metric_catalogue.py --n 64 --size 32 --repeats 3

On N single-channel images of ``--size`` pixels with continuous random maps and rectangular
masks (an untrained linear model; values and timing do not depend on training), each metric is
run by both libraries at equal settings (those of tests/metrics/test_quantus_reference.py),
and the script prints, per metric, the largest absolute difference of the per-sample scores
and the time ratio Quantus / ours (best of ``--repeats``; the machine may be shared).
Faithfulness estimate removes one pixel at a time (N x H x W forward passes in both).
Quantus calls ``np.trapz``, which NumPy 2.4 removed: restored before the import.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if not hasattr(np, "trapz"):
    np.trapz = np.trapezoid

from metrics import AttributionLocalisation, Complexity, EffectiveComplexity, FaithfulnessEstimate, LocalisationAUC, TopKIntersection  # noqa: E402


def best(fn, repeats: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import quantus

    n, s = args.n, args.size
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, s, s, generator=gen)
    x[:, :, 0, 0] = 0                     # Quantus's "black" baseline is the image minimum: make it our zero substrate
    a = torch.rand(n, 1, s, s, generator=gen)
    masks = torch.zeros(n, 1, s, s, dtype=torch.bool)
    for i in range(n):
        r, c = i % (s // 2), (3 * i) % (s // 2)
        masks[i, :, r: r + s // 3, c: c + s // 3] = True
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(s * s, 4)).eval()
    y = model(x).argmax(1)
    k = s * s // 5
    sparse = a * (a > 0.7)
    cases = [
        ("complexity", lambda: Complexity(pooling="none")(model, x, y, a).scores,
         quantus.Complexity(abs=True, normalise=False, disable_warnings=True), a, None),
        ("effective_complexity", lambda: EffectiveComplexity(pooling="none")(model, x, y, sparse).extras["count"],
         quantus.EffectiveComplexity(eps=1e-5, abs=True, normalise=True, disable_warnings=True), sparse, None),
        ("top_k_intersection", lambda: TopKIntersection(k=k / (s * s), seed=0)(model, x, y, a, masks=masks).scores,
         quantus.TopKIntersection(k=k, abs=False, normalise=False, disable_warnings=True), a, masks),
        ("localisation_auc", lambda: LocalisationAUC()(model, x, y, a, masks=masks).scores,
         quantus.AUC(abs=False, normalise=False, disable_warnings=True), a, masks),
        ("attribution_localisation", lambda: AttributionLocalisation()(model, x, y, a, masks=masks).scores,
         quantus.AttributionLocalisation(abs=False, normalise=False, disable_warnings=True), a, masks),
        ("faithfulness_estimate", lambda: FaithfulnessEstimate(granularity="pixel")(model, x, y, a).scores,
         quantus.FaithfulnessEstimate(features_in_step=1, abs=False, normalise=False, perturb_baseline="black", disable_warnings=True), a, None),
    ]
    print(f"N={n} images of {s}x{s} px, best of {args.repeats}, {args.threads} thread(s)")
    print(f"{'metric':26s} {'max |ours - quantus|':>20s} {'ours s':>9s} {'quantus s':>10s} {'quantus / ours':>15s}")
    for name, ours, q, maps, s_batch in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_ours, v_ours = best(ours, args.repeats)
            t_q, v_q = best(lambda: q(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=maps.numpy(),
                                      s_batch=None if s_batch is None else s_batch.numpy().astype(float), device="cpu"), args.repeats)
        diff = float(np.abs(v_ours.double().numpy() - np.asarray(v_q, dtype=np.float64)).max())
        print(f"{name:26s} {diff:20.2e} {t_ours:9.4f} {t_q:10.4f} {t_q / t_ours:14.1f}x", flush=True)


if __name__ == "__main__":
    main()
