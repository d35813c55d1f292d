"""A sweep of M methods x K metrics: the harness against a Quantus + Captum loop (not a test; prints one report).

    python scripts/bench_sweep.py                         # needs quantus: pip install -e ".[bench]"
    python scripts/bench_sweep.py --n 32 --repeats 2

M = 3 methods (saliency, integrated gradients with 10 Riemann-trapezoid steps and a zero
baseline, gradient x input) x K = 3 metrics (deletion at 25 points per curve with the
zero/``mean`` substrate and softmax scores, sparseness, complexity) on N SpuriousShapes
images of 48 x 48 pixels and the SmallCNN (untrained seeded weights: timing does not depend
on training), at equal settings on both sides:

* the harness, as the runner does it: each method explains the batch once, and all K metrics
  score those maps (M attribution passes);
* Quantus 0.6 with Captum: for each method and metric, the metric is called with
  ``explain_func=quantus.explain`` and ``a_batch=None``, so every metric computes its own maps
  (M x K attribution passes), the loop Quantus's documentation shows for a sweep.

Prints both times and their ratio, and Quantus's time with the maps given (``a_batch``), to
separate the repeated explanations from the metrics' own cost. Times are the best of
``--repeats`` rounds, the two sides interleaved (the machine may be shared). Quantus calls
``np.trapz``, which NumPy 2.4 removed: restored before the import.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if not hasattr(np, "trapz"):
    np.trapz = np.trapezoid  # shim: NumPy 2.4 removed np.trapz, which quantus.helpers.utils.calculate_auc calls

from harness.datasets import SpuriousShapes  # noqa: E402
from harness.models import SmallCNN  # noqa: E402
from methods.gradient import GradientXInput  # noqa: E402
from methods.integrated_gradients import IntegratedGradients  # noqa: E402
from methods.saliency import Saliency  # noqa: E402
from metrics.complexity import Complexity  # noqa: E402
from metrics.deletion import Deletion  # noqa: E402
from metrics.sparseness import Sparseness  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=32, help="images")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import quantus

    size, steps = 48, 1 / 24                # 96 px per step; Quantus needs 3 x 96 to divide 48 x 48
    ds = SpuriousShapes(n_test=max(args.n, 16), image_size=size)
    x = ds.split("test").images[: args.n]
    torch.manual_seed(0)
    model = SmallCNN().eval()
    with torch.no_grad():
        y = model(x).argmax(1)
    ctx = dict(mean=ds.mean, std=ds.std)
    ours_methods = {"Saliency": Saliency(), "IntegratedGradients": IntegratedGradients(n_steps=10, method="riemann_trapezoid"),
                    "InputXGradient": GradientXInput()}
    ours_metrics = [Deletion(steps=steps, substrate="mean", abpc=False), Sparseness(), Complexity()]
    step = round(steps * size * size)
    quantus_metrics = [
        quantus.PixelFlipping(features_in_step=3 * step, perturb_baseline=0.0, abs=False, normalise=False,
                              disable_warnings=True, display_progressbar=False, return_auc_per_sample=True),
        quantus.Sparseness(disable_warnings=True), quantus.Complexity(disable_warnings=True)]
    x_np, y_np = x.numpy(), y.numpy()

    def ours():
        for explainer in ours_methods.values():
            maps = explainer(model, x, y)
            for metric in ours_metrics:
                metric(model, x, y, maps, **ctx)

    def quantus_loop(given: dict | None = None):
        for name in ours_methods:
            for metric in quantus_metrics:
                a = None if given is None else given[name]
                metric(model=model, x_batch=x_np, y_batch=y_np, a_batch=a, explain_func=quantus.explain,
                       explain_func_kwargs={"method": name}, device="cpu", softmax=True, batch_size=args.n)

    maps_q = {name: quantus.explain(model, x_np, y_np, method=name) for name in ours_methods}
    maps_q = {k: np.repeat(v, 3, axis=1) if v.shape[1] == 1 else v for k, v in maps_q.items()}  # PixelFlipping wants C channels
    t_ours = t_q = t_given = math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ours()
            t_ours = min(t_ours, time.perf_counter() - t0)
            t0 = time.perf_counter()
            quantus_loop()
            t_q = min(t_q, time.perf_counter() - t0)
            t0 = time.perf_counter()
            quantus_loop(maps_q)
            t_given = min(t_given, time.perf_counter() - t0)
    m, k = len(ours_methods), len(ours_metrics)
    print(f"{args.n} images 3x{size}x{size}, SmallCNN, threads={args.threads}, torch {torch.__version__}, quantus "
          f"{quantus.__version__}, load average {os.getloadavg()[0]:.1f}; best of {args.repeats}")
    print(f"sweep of {m} methods x {k} metrics: harness {t_ours:.2f} s ({m} attribution passes); Quantus + Captum loop with "
          f"explain_func {t_q:.2f} s ({m * k} attribution passes) -> {t_q / t_ours:.1f}x; Quantus with the maps given "
          f"(a_batch) {t_given:.2f} s -> {t_given / t_ours:.1f}x")


if __name__ == "__main__":
    main()
