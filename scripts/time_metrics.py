"""Time every metric YAML on 64 images of the default data (not a test; prints one table).

    python scripts/time_metrics.py                        # default data, model and method, 64 images, one thread
    python scripts/time_metrics.py --n 64 --budget 30 --threads 1 --only deletion,road

Composes the default config (``python -m harness`` with no overrides: SpuriousShapes 32 px,
SmallCNN, saliency maps), builds the default model with untrained seeded weights (a metric's
cost does not depend on training), explains the first ``--n`` test images once, and runs each
``conf/metric/*.yaml`` on them with the context the runner gives, timing each call (the first
call: chunk tuning included, as in a run). A metric slower than ``--budget`` seconds (the
default benchmark's whole run takes about that) is marked OVER: its YAML's header must state
its cost. ROAR is not run: it retrains the model once per fraction (its YAML states the cost).
The machine may be shared: the table says how many CPU threads torch used and the load average.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hydra import compose, initialize_config_module  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from harness.build import build  # noqa: E402
from harness.models import build_network  # noqa: E402
from methods import Explainer  # noqa: E402
from metrics import Metric  # noqa: E402

RETRAINS = ("roar",)   # metrics that train models: not timed here


@contextlib.contextmanager
def no_progress(total: int, desc: str, unit: str = "it"):
    """A metrics.types.Progress that reports nothing (the timing should not include printing)."""
    yield lambda n: None


def default_setup(n: int, overrides: tuple[str, ...] = ()):
    """The default config (with ``overrides``), its untrained seeded model, the first ``n`` test images, their
    predicted targets and maps, and the context the runner gives the metrics (shared with ``bench_metrics.py``)."""
    with initialize_config_module("conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    dataset = build(cfg.dataset, "dataset", seed=cfg.seed)
    test = dataset.split("test").head(n)
    torch.manual_seed(cfg.seed)
    model = build_network(cfg.model, dataset).eval()
    explainer = build(cfg.method, "method", seed=cfg.seed, contract=Explainer)
    x, labels = test.images, test.labels
    with torch.no_grad():
        targets = model(x).argmax(1)
    maps = explainer(model, x, targets)
    context = {"labels": labels, "masks": test.masks, "groups": test.groups, "explainer": explainer, "mean": dataset.mean,
               "std": dataset.std, "dataset": dataset, "indices": torch.arange(len(x)), "progress": no_progress}
    return cfg, dataset, model, explainer, x, targets, maps, context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=64, help="test images (default 64)")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds; slower metrics are marked OVER (default 30)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--only", default="", help="comma-separated metric names (default: every YAML)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg, dataset, model, explainer, x, targets, maps, context = default_setup(args.n)
    folder = Path(__file__).resolve().parents[1] / "conf" / "metric"
    names = [n for n in args.only.split(",") if n] or sorted(p.stem for p in folder.glob("*.yaml"))
    rows = []
    for name in names:
        if name in RETRAINS:
            rows.append((name, float("nan"), "retrains: cost in its YAML"))
            continue
        node = OmegaConf.load(folder / f"{name}.yaml")
        metric = build(node, f"metric.{name}", seed=cfg.seed, contract=Metric)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metric(model, x, targets, maps, **context)
        seconds = time.perf_counter() - start
        rows.append((name, seconds, "OVER" if seconds > args.budget else ""))
        print(f"  {name}: {seconds:.2f} s", file=sys.stderr, flush=True)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"{len(x)} images {tuple(x.shape[1:])}, {type(model).__name__}, {type(explainer).__name__} maps, "
          f"{torch.get_num_threads()} thread(s), load average {load[0]:.1f} on {os.cpu_count()} CPUs, budget {args.budget:g} s")
    print(f"{'metric':28s} {'seconds':>8s}  note")
    for name, seconds, note in sorted(rows, key=lambda r: -r[1] if r[1] == r[1] else 0):
        print(f"{name:28s} {seconds:8.2f}  {note}" if seconds == seconds else f"{name:28s} {'-':>8s}  {note}")


if __name__ == "__main__":
    main()
