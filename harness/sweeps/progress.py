"""A sweep's progress line: ``sweep: k/N jobs done ..., ETA ...``, whatever process runs each job.

A sweep's jobs may run in other processes or on other machines, so the sweep as a
whole is tracked in a file in the Hydra sweep folder: every finished, failed or skipped job appends one line (under
an ``fcntl`` lock) and prints ``sweep: k/N jobs done ..., ETA ...``, where N is the
job count the sweep callback computed and the ETA extrapolates the wall time so far.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

JOBS_ENV, START_ENV = "HARNESS_SWEEP_JOBS", "HARNESS_SWEEP_START"


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def record_job(sweep_dir: str | Path, job: str, outcome: str) -> str:
    """Append ``job``'s outcome (finished, failed, skipped) to the sweep's progress file; the progress line."""
    path = Path(sweep_dir) / ".harness_progress"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.write(f"{job} {outcome}\n")
            handle.flush()
            handle.seek(0)
            outcomes = [line.split()[-1] for line in handle.read().splitlines() if line.strip()]
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    done = len(outcomes)
    total = int(os.environ.get(JOBS_ENV, "0") or 0)
    parts = [f"sweep: {done}/{total or '?'} jobs done"]
    counts = [f"{outcomes.count(kind)} {kind}" for kind in ("failed", "skipped") if outcomes.count(kind)]
    if counts:
        parts[0] += f" ({', '.join(counts)})"
    with contextlib.suppress(ValueError):
        elapsed = time.time() - float(os.environ[START_ENV])
        parts.append(f"{duration(elapsed)} elapsed")
        computed = done - outcomes.count("skipped")
        if total > done and computed > 0:
            parts.append(f"ETA {duration(elapsed / done * (total - done))}")
    return ", ".join(parts)
