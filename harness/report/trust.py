"""Can the report's numbers be trusted? Dropped samples per metric, and the meta-evaluation beside the leaderboard.

Two sections the report adds after its leaderboard (``report.md``), with their tables
(``dropped.csv``, ``meta_evaluation.csv``):

* **Dropped samples**: each run logs, per metric, how many samples had an undefined score and
  why (tag ``harness.dropped.<metric>``, "reason: k; reason: k", :mod:`metrics.result`); a
  headline leaves those samples out, so the report lists them per method and metric, with the
  samples each headline used. No tag: nothing was dropped.
* **Meta-evaluation**: where the experiment of the report's runs also holds a finished
  meta-evaluation run (``python -m harness.meta``, tag ``harness.kind=meta_evaluation``), its
  ``meta/summary.csv`` (MetaQuantus-style noise resilience and adversary reactivity, MC with its
  95 % interval; :mod:`metrics.meta_evaluation`) is shown, newest run per meta space, with a
  mark on the metrics the leaderboard ranks. It was computed on its own methods and samples,
  which the section names.
"""
from __future__ import annotations

import math
import tempfile

import pandas as pd
from mlflow.tracking import MlflowClient

from harness.report.load import Collection

DROPPED_TAG = "harness.dropped."
META_KIND = "meta_evaluation"
META_COLUMNS = ("mc", "mc_ci_low", "mc_ci_high", "iac_nr", "iac_ar", "iec_nr", "iec_ar", "n")


def dropped(collection: Collection, client: MlflowClient) -> pd.DataFrame:
    """One row per (run, metric, reason) with samples dropped: run, method, metric, reason, dropped, samples."""
    rows = []
    used = collection.scores.groupby(["run", "metric"]).size().to_dict() if len(collection.scores) else {}
    for run_id, method in zip(collection.runs.get("run", []), collection.runs.get("method", [])):
        tags = client.get_run(run_id).data.tags
        for key, text in tags.items():
            if not key.startswith(DROPPED_TAG):
                continue
            metric = key[len(DROPPED_TAG):]
            for part in filter(None, (p.strip() for p in text.split(";"))):
                reason, _, count = part.rpartition(":")
                rows.append({"run": run_id, "method": method, "metric": metric, "reason": reason.strip() or part,
                             "dropped": int(count) if count.strip().isdigit() else math.nan,
                             "samples": used.get((run_id, metric), math.nan)})
    return pd.DataFrame(rows, columns=["run", "method", "metric", "reason", "dropped", "samples"])


def meta_evaluations(collection: Collection, client: MlflowClient) -> pd.DataFrame:
    """The newest finished meta-evaluation per meta space in the experiments of the report's runs (their summary rows)."""
    experiments = sorted({client.get_run(r).info.experiment_id for r in collection.runs.get("run", [])})
    if not experiments:
        return pd.DataFrame()
    runs = client.search_runs(experiments, f"tags.`harness.kind` = '{META_KIND}' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=100)
    frames, spaces = [], set()
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            space = run.data.tags.get("harness.meta_space", "model")
            if space in spaces:
                continue
            try:
                frame = pd.read_csv(client.download_artifacts(run.info.run_id, "meta/summary.csv", tmp))
            except Exception:  # noqa: BLE001 - a run without the table is skipped, as the loader skips runs without scores
                continue
            spaces.add(space)
            frames.append(frame.assign(space=space, run=run.info.run_id, methods=run.data.tags.get("harness.methods", "?")))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _num(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown(drops: pd.DataFrame, meta: pd.DataFrame, ranked: list[str]) -> str:
    """The two report sections (module docstring) as Markdown."""
    parts = ["## Dropped samples", ""]
    if drops.empty:
        parts += ["No metric dropped a sample: every headline uses every evaluated sample.", ""]
    else:
        parts += ["Samples whose score is undefined (left out of the headline), per method and metric:", "",
                  "| method | metric | reason | dropped | samples in the headline |", "|---|---|---|---|---|"]
        parts += [f"| {r.method} | {r.metric} | {r.reason} | {_num(r.dropped)} | {_num(r.samples)} |" for r in drops.itertuples()]
        parts += [""]
    if not meta.empty:
        parts += ["## Meta-evaluation", "",
                  "Can each metric be trusted on this model and data? Noise resilience (IAC_NR, IEC_NR: scores should not change "
                  "under minor perturbations) and adversary reactivity (IAC_AR, IEC_AR: they should change under disruptive "
                  "ones); MC is their mean (1 ideal) with a 95 % interval over the perturbation draws (`metrics.meta_evaluation`). "
                  "From the experiment's newest meta-evaluation run per space, on its own methods; * : ranked in the leaderboard.", "",
                  "| metric | space | MC [95 % CI] | IAC_NR | IAC_AR | IEC_NR | IEC_AR | n | methods |", "|---|---|---|---|---|---|---|---|---|"]
        for r in meta.itertuples():
            mark = " *" if r.metric in ranked else ""
            parts.append(f"| {r.metric}{mark} | {r.space} | {_num(r.mc)} [{_num(r.mc_ci_low)}, {_num(r.mc_ci_high)}] | {_num(r.iac_nr)} | "
                         f"{_num(r.iac_ar)} | {_num(r.iec_nr)} | {_num(r.iec_ar)} | {_num(r.n)} | {r.methods} |")
        parts += [""]
    return "\n".join(parts)


def trust_section(collection: Collection, ranked: list[str], folder=None) -> str:
    """Both sections as Markdown; with ``folder``, also ``dropped.csv`` and (if any) ``meta_evaluation.csv`` written there."""
    client = MlflowClient(collection.uri)
    drops, meta = dropped(collection, client), meta_evaluations(collection, client)
    if folder is not None:
        drops.to_csv(folder / "dropped.csv", index=False)
        if not meta.empty:
            meta.to_csv(folder / "meta_evaluation.csv", index=False)
    return markdown(drops, meta, ranked)
