"""Peak memory of a streamed run at two test-split sizes (issue 17; not a test, prints one report).

    python scripts/memory_streaming.py                         # 96-px spurious_shapes, all of a 128- vs a 2048-image test split
    python scripts/memory_streaming.py --sizes 128 512 --size 64 --metrics deletion
    python scripts/memory_streaming.py --metrics deletion,insertion,spurious_background \
        --override metric.deletion.steps=0.25 metric.insertion.steps=0.25   # cheaper curves, same data path

Each size is one ``python -m harness`` process in a fresh temporary ``HARNESS_HOME`` that
explains and scores every image of its test split (``eval.n_samples`` = ``dataset.n_test``),
with the same small training split (``--n-train``) and one training epoch, so the two
runs differ only in how many test images stream through the evaluation. The peak
resident set size of each process is read from ``os.wait4`` (the kernel's ``ru_maxrss``).
Target (issue 17): the larger run peaks within 20 % of the smaller one; before streaming,
every generated test split and its background variants were held whole.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def peak_rss(overrides: list[str], threads: int) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of one ``python -m harness`` run with ``overrides``."""
    with tempfile.TemporaryDirectory() as home:
        env = os.environ | {"HARNESS_HOME": home, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
                            "OMP_NUM_THREADS": str(threads), "HARNESS_PROGRESS": "0"}
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "harness", *overrides], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"run failed ({' '.join(overrides)}): {proc.stderr.read().decode()[-2000:]}")
        return usage.ru_maxrss / 1024, wall  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=(128, 2048), help="the two test-split sizes")
    parser.add_argument("--size", type=int, default=96, help="image side in pixels")
    parser.add_argument("--n-train", type=int, default=256, help="training images (the same for both runs)")
    parser.add_argument("--batch-size", type=int, default=64, help="eval.batch_size")
    parser.add_argument("--metrics", default="deletion,insertion,spurious_background", help="comma-separated metric selection")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for both runs (e.g. a cheaper metric setting)")
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        overrides = [f"dataset.image_size={args.size}", f"dataset.n_test={n}", f"eval.n_samples={n}", f"dataset.n_train={args.n_train}",
                     "model.training.epochs=1", f"eval.batch_size={args.batch_size}", f"metric=[{args.metrics}]", "tracking.heatmaps=4", *args.override]
        rss, wall = peak_rss(overrides, args.threads)
        rows.append((n, rss, wall))
        print(f"test split {n:6d} images of {args.size} px: peak RSS {rss:8.1f} MiB, {wall:6.1f} s", flush=True)
    (small, rss_small, _), (large, rss_large, _) = rows
    print(f"ratio {large}/{small} images: peak RSS x{rss_large / rss_small:.3f} (target <= 1.20); metrics {args.metrics}, "
          f"eval.batch_size {args.batch_size}, {args.threads} threads, overrides {' '.join(args.override) or 'none'}")


if __name__ == "__main__":
    main()
