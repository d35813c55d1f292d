"""Identical reruns: run each experiment twice on this machine, each into a fresh harness home, and compare.

    python scripts/check_reruns.py                      # every experiment below, reduced (3-12 min each at load 8-18)
    python scripts/check_reruns.py --only conservation sanity_checks --keep /tmp/reruns

The README's "Reproducibility" section claims that the same command run twice on the same machine gives
identical metric values. This script checks it for every ``conf/experiment/NAME.yaml`` except
``imagenet_resnet50`` (it stops in one line without the user's ImageNet files) and ``roar`` (its reruns
are checked with the roar experiment). Each experiment is run as ``python -m harness experiment=NAME
<reduction>`` twice, each time with its own empty ``HARNESS_HOME`` (so its own MLflow store and its own
cache: the model is trained and every map computed afresh both times), then the two stores are compared.

Reductions (so each run takes seconds to a minute; the experiment's structure, metrics and sweep kind are
kept, only its size shrinks; :data:`EXPERIMENTS`):

* every experiment: 16 px images, 256 training and 64 test images, 2 training epochs, 4 evaluated images,
  2 heat maps;
* ``conservation``: 2 of its 9 method variants (gradient x input, IG with 8 steps) x both bias settings;
* ``deletion_insertion``: 2 of its 10 methods (saliency, random), all 9 metrics (ROAD included);
* ``method_comparison``: 2 of its 10 methods (saliency, Grad-CAM), all 5 metrics;
* ``sanity_checks``: 2 of its 8 methods (saliency, random) x both label settings;
* ``spurious_shortcut``: correlations 0.5 and 1.0 (of 4), seed 0 (of 3), 2 of its 8 methods (saliency, random);
* ``metric_reliability``: seeds 0 and 1 (of 3), 2 perturbations of each kind (of 5), 2 of its 5 methods
  (saliency, random), all 4 metrics.

What is compared (:func:`compare`), run by run, pairing the two stores' runs by their config hash (tag
``harness.config_hash``; a run without one, such as a sweep's parent or a meta-evaluation, by its
kind, seed and name):

* every logged metric, every step of its history (``MlflowClient.get_metric_history``), except the
  wall-clock timings ``time_*_s``, which measure the machine and not the result;
* every CSV artifact (the per-sample ``scores.csv``, curves, the reports' tables, ``meta/summary.csv``):
  numeric columns value by value (NaN equals NaN), other columns as text, except columns holding only MLflow
  run ids (32 hex digits), which are fresh per store;
* ``.npz`` files (the logged maps), array by array (text arrays, e.g. stage names, for equality).

It prints one row per experiment: runs paired, metric values compared, files compared, the largest
absolute difference, and whether everything is identical (bit for bit: max |diff| = 0 and nothing
missing on either side). Exit status 1 if any experiment differs.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

SMALL = ["dataset.image_size=16", "dataset.n_train=256", "dataset.n_test=64", "model.training.epochs=2",
         "eval.n_samples=4", "tracking.heatmaps=2"]
SWEEPS: dict[str, dict[str, str]] = {   # replaces the experiment's hydra.sweeper.params (key: comma-separated values)
    "conservation": {"+experiment/conservation": "gradient_x_input,ig_8", "model.network.bias": "true,false"},
    "deletion_insertion": {"method": "saliency,random"},
    "method_comparison": {"method": "saliency,gradcam"},
    "sanity_checks": {"method": "saliency,random", "model.training.random_labels": "false,true"},
    "spurious_shortcut": {"dataset.spurious_correlation": "0.5,1.0", "seed": "0", "method": "saliency,random"},
}
EXPERIMENTS: dict[str, list[str]] = {
    **{name: ["hydra.sweeper.params={" + ", ".join(f'{k}: "{v}"' for k, v in sweep.items()) + "}"] for name, sweep in SWEEPS.items()},
    "metric_reliability": ["meta.seeds=[0,1]", "meta.n_perturbations=2", "~meta.methods.integrated_gradients",
                           "~meta.methods.gradcam", "~meta.methods.guided_backprop"],
}
SKIPPED = {"imagenet_resnet50": "stops in one line without the user's ImageNet files",
           "roar": "its reruns are checked with the roar experiment"}
RUN_ID = re.compile(r"[0-9a-f]{32}")   # an MLflow run id: fresh in every store


def run_ids(column: pd.Series) -> bool:
    """Whether every value of a column is an MLflow run id (such columns are not compared)."""
    return len(column) > 0 and all(isinstance(v, str) and RUN_ID.fullmatch(v) for v in column)


@dataclass
class Run:
    """One MLflow run of a store: its metric histories and its artifact files."""

    name: str
    metrics: dict[str, list[tuple[int, float]]]
    files: dict[str, Path]


@dataclass
class Comparison:
    """What :func:`compare` found between two stores."""

    runs: int = 0
    metric_values: int = 0   # logged metric values (every step)
    file_values: int = 0     # numbers in the CSV and npz files
    files: int = 0
    max_diff: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.problems and self.max_diff == 0.0

    def differ(self, diff: float, where: str) -> None:
        if not diff == 0.0:   # NaN too
            self.problems.append(f"{where}: |diff| {diff:.3g}")
            self.max_diff = math.inf if math.isnan(diff) else max(self.max_diff, diff)


def run_key(tags: dict[str, str], name: str) -> str:
    """What pairs a run with its rerun: the config hash, else the kind, seed and name (parents, meta-evaluations)."""
    if "harness.config_hash" in tags and "harness.shard" not in tags:
        return tags["harness.config_hash"]
    parent = "child" if "mlflow.parentRunId" in tags else "top"
    return f"{tags.get('harness.kind', tags.get('harness.sweep', 'run'))}|{tags.get('harness.seed', '')}|{name}|{parent}"


def load_store(home: Path) -> dict[str, Run]:
    """Every run of the harness home's MLflow store, by :func:`run_key` (an error if two runs share a key)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    runs: dict[str, Run] = {}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], max_results=50000):
            name = run.info.run_name or run.info.run_id
            key = run_key(run.data.tags, name)
            if key in runs:
                raise ValueError(f"two runs in {home} pair as {key!r}: cannot tell which rerun is which")
            metrics = {m: sorted((h.step, h.value) for h in client.get_metric_history(run.info.run_id, m))
                       for m in run.data.metrics if not (m.startswith("time_") and m.endswith("_s"))}
            folder = Path(unquote(urlparse(run.info.artifact_uri).path))
            files = {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()} if folder.is_dir() else {}
            runs[key] = Run(name, metrics, files)
    return runs


def compare_csv(a: Path, b: Path, where: str, out: Comparison) -> None:
    fa, fb = pd.read_csv(a), pd.read_csv(b)
    if list(fa.columns) != list(fb.columns) or len(fa) != len(fb):
        out.problems.append(f"{where}: shape {fa.shape} vs {fb.shape}")
        return
    for column in fa.columns:
        x, y = fa[column], fb[column]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            xs, ys = x.to_numpy(float), y.to_numpy(float)
            same_nan = np.isnan(xs) == np.isnan(ys)
            if not same_nan.all():
                out.differ(math.nan, f"{where}[{column}] NaN in one run only")
                continue
            finite = ~np.isnan(xs)
            out.file_values += int(finite.sum())
            out.differ(float(np.abs(xs[finite] - ys[finite]).max()) if finite.any() else 0.0, f"{where}[{column}]")
        elif not (run_ids(x) and run_ids(y)) and not (x.astype(str) == y.astype(str)).all():
            out.problems.append(f"{where}[{column}]: text differs")


def compare_npz(a: Path, b: Path, where: str, out: Comparison) -> None:
    with np.load(a) as za, np.load(b) as zb:
        if sorted(za.files) != sorted(zb.files):
            out.problems.append(f"{where}: arrays {sorted(za.files)} vs {sorted(zb.files)}")
            return
        for name in za.files:
            x, y = za[name], zb[name]
            if x.shape != y.shape:
                out.problems.append(f"{where}[{name}]: shape {x.shape} vs {y.shape}")
                continue
            if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or x.dtype != y.dtype:   # labels (text)
                if x.dtype != y.dtype or not np.array_equal(x, y):
                    out.problems.append(f"{where}[{name}]: {x.dtype} arrays differ")
                continue
            out.file_values += x.size
            out.differ(float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max()) if x.size else 0.0, f"{where}[{name}]")


def compare(first: dict[str, Run], second: dict[str, Run]) -> Comparison:
    """Pair the runs of two stores and compare their metrics and files (module docstring)."""
    out = Comparison()
    for key in sorted(set(first) ^ set(second)):
        out.problems.append(f"run {(first.get(key) or second.get(key)).name} in one store only")
    for key in sorted(set(first) & set(second)):
        a, b = first[key], second[key]
        out.runs += 1
        for metric in sorted(set(a.metrics) | set(b.metrics)):
            ha, hb = a.metrics.get(metric, []), b.metrics.get(metric, [])
            if [s for s, _ in ha] != [s for s, _ in hb]:
                out.problems.append(f"{a.name}/{metric}: steps differ")
                continue
            for (_, x), (_, y) in zip(ha, hb):
                out.metric_values += 1
                out.differ(0.0 if (math.isnan(x) and math.isnan(y)) else abs(x - y), f"{a.name}/{metric}")
        for path in sorted(set(a.files) | set(b.files)):
            if not path.endswith((".csv", ".npz")):
                continue
            if path not in a.files or path not in b.files:
                out.problems.append(f"{a.name}/{path}: in one run only")
                continue
            out.files += 1
            (compare_csv if path.endswith(".csv") else compare_npz)(a.files[path], b.files[path], f"{a.name}/{path}", out)
    return out


def run_experiment(name: str, overrides: list[str], home: Path) -> float:
    """``python -m harness experiment=NAME <overrides>`` into ``home``; its wall time (an error with its stderr if it fails)."""
    env = dict(os.environ, HARNESS_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    env.pop("MLFLOW_TRACKING_URI", None)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", f"experiment={name}", *overrides], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"experiment={name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(EXPERIMENTS), help="these experiments only")
    parser.add_argument("--keep", type=Path, help="keep the harness homes under this folder (default: a temporary one)")
    parser.add_argument("--verbose", action="store_true", help="list every difference")
    parser.add_argument("--reuse", action="store_true", help="with --keep: compare the two homes an earlier call left there "
                                                              "instead of running the experiment again")
    args = parser.parse_args(argv)
    names = args.only or list(EXPERIMENTS)
    for skipped, why in SKIPPED.items():
        print(f"skipped: {skipped} ({why})")
    rows, failed = [], False
    with tempfile.TemporaryDirectory(prefix="reruns-") as tmp:
        root = args.keep or Path(tmp)
        for name in names:
            overrides = SMALL + EXPERIMENTS[name]
            homes = [root / name / "first", root / name / "second"]
            reuse = args.reuse and all((home / "mlflow.db").is_file() for home in homes)
            seconds = [math.nan] * 2 if reuse else [run_experiment(name, overrides, home) for home in homes]
            result = compare(load_store(homes[0]), load_store(homes[1]))
            failed |= not result.identical
            rows.append({"experiment": name, "runs": result.runs, "metric values": result.metric_values, "files": result.files,
                         "values in files": result.file_values,
                         "max |diff|": f"{result.max_diff:.3g}", "identical": "yes" if result.identical else "no",
                         "wall s (1st, 2nd)": f"{seconds[0]:.0f}, {seconds[1]:.0f}"})
            print(f"{name}: identical {rows[-1]['identical']} ({result.runs} runs, {result.metric_values} metric values, "
                  f"{result.files} files)", flush=True)
            for problem in result.problems[: None if args.verbose else 5]:
                print(f"  {problem}")
    print()
    table = pd.DataFrame(rows)
    print("| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(str(v) for v in row) + " |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
