"""``harness report SOURCE`` / ``python -m harness.report SOURCE``: write a comparison report folder.

SOURCE is a sweep's parent run id, a run id, an MLflow experiment name or a filter string
(see :mod:`harness.report.load`). The folder holds:

* ``scores.csv`` and ``scores.parquet`` (parquet when pyarrow is installed): the tidy per-sample frame;
* ``leaderboard.csv`` (one row per method, numeric columns), ``summary.csv`` (one row per
  method and metric, with its letter ``group``), ``significance.csv`` (every pair, per metric: n, gain, p, Holm p),
  ``friedman.csv`` (per metric: Friedman's chi-square, p, units),
  ``agreement.csv`` (Kendall's tau and verdicts), ``models.csv`` (the header);
* ``leaderboard.md`` (README-ready), ``report.md`` (everything, with the figures), ``leaderboard.tex``;
* the figures of :mod:`harness.report.plots`, PNG and PDF;
* ``contrast.csv`` and ``contrast_levels.csv`` where the runs sweep ``dataset.spurious_correlation`` and score
  ``spurious_background``: the BAM-style model contrast per method (:mod:`harness.report.contrast`; also in ``report.md``,
  and each method that fails to show the shortcut is a warning line);
* ``dropped.csv`` and, where the experiment holds a meta-evaluation, ``meta_evaluation.csv``
  (:mod:`harness.report.trust`; both also in ``report.md``).
* where the runs hold a cascading randomisation metric or sweep ``model.training.random_labels``:
  ``cascade_maps.png``/``.pdf``/``.npz`` and ``random_labels.csv`` (:mod:`harness.report.sanity`, in ``report.md``);
* with ``--prototypes``: ``prototypes.png``/``.pdf``/``.npz``, each model's class prototypes
  (:mod:`harness.report.prototypes`; the models are rebuilt from each run's ``config.yaml`` and
  the model cache, nothing is trained), shown beside the leaderboard in ``report.md``.

For a sweep the same files are logged as artifacts of its parent run (``report/``), unless ``--no-log``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient

from harness.report import contrast, plots, prototypes, render, sanity, trust
from harness.report.leaderboard import Report, analyse
from harness.report.load import collect


def write(report: Report, folder: Path, with_prototypes: bool = False) -> list[Path]:
    """Write every file of the report (see the module docstring) into ``folder``; the paths written.

    ``with_prototypes``: also the class prototypes of each model (a model missing from the cache is a warning line).
    """
    folder.mkdir(parents=True, exist_ok=True)
    scores = report.collection.scores
    scores.to_csv(folder / "scores.csv", index=False)
    try:
        scores.to_parquet(folder / "scores.parquet", index=False)
    except ImportError:
        pass  # parquet needs pyarrow (or fastparquet); the CSV holds the same frame
    report.wide.to_csv(folder / "leaderboard.csv", index=False)
    report.summary.to_csv(folder / "summary.csv", index=False)
    report.pairs.to_csv(folder / "significance.csv", index=False)
    report.friedman.to_csv(folder / "friedman.csv", index=False)
    report.agreement.to_csv(folder / "agreement.csv", index=False)
    report.header.to_csv(folder / "models.csv", index=False)
    figures = plots.draw_all(report, folder)
    if with_prototypes:
        found, missing = prototypes.panels(report)
        report.warnings += missing
        figures = prototypes.save(found, folder) + figures
    (folder / "leaderboard.md").write_text(render.markdown_leaderboard(report) + "\n")
    trust_md = trust.trust_section(report.collection, report.metrics, folder)  # dropped samples, meta-evaluation
    contrast_md = ""
    found = contrast.model_contrast(report.collection)  # a sweep over dataset.spurious_correlation: the BAM model contrast
    if found is not None:
        found[0].to_csv(folder / "contrast.csv", index=False)
        found[1].to_csv(folder / "contrast_levels.csv", index=False)
        report.warnings += contrast.warnings_of(found[0])
        contrast_md = "\n" + contrast.markdown(*found)
    sanity_md = sanity.section(report, folder)  # cascade maps per stage, random-labels test: where the runs hold them
    (folder / "report.md").write_text(render.markdown_report(report, figures) + "\n" + trust_md + contrast_md + ("\n" + sanity_md if sanity_md else ""))
    (folder / "leaderboard.tex").write_text(render.latex_leaderboard(report))
    return sorted(folder.iterdir())


def report(source: str, out: str | Path | None = None, uri: str | None = None, seed: int = 0, n_resamples: int = 2000,
           alpha: float = 0.05, log: bool = True, with_prototypes: bool = False) -> Report:
    """Collect, analyse and write the report of ``source`` into ``out`` (a temporary folder when None); log it to a sweep's parent.

    Args:
        source (str): A sweep's parent run id, a run id, an experiment name or a filter string.
        out (str or Path or None, optional): The folder written. None: only logged (sweeps). Default: None.
        uri (str or None, optional): The tracking store (None: as ``python -m harness``). Default: None.
        seed (int, optional): Seeds every bootstrap. Default: 0.
        n_resamples (int, optional): Bootstrap resamples. Default: 2000.
        alpha (float, optional): Significance level of the Holm-corrected tests. Default: 0.05.
        log (bool, optional): Log the files to the sweep's parent run (``report/``). Default: True.
        with_prototypes (bool, optional): Draw each model's class prototypes (needs the models in the cache). Default: False.
    """
    collection = collect(source, uri)
    result = analyse(collection, seed=seed, n_resamples=n_resamples, alpha=alpha)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(out) if out is not None else Path(tmp)
        write(result, folder, with_prototypes)
        if log and collection.parent_id is not None:
            MlflowClient(collection.uri).log_artifacts(collection.parent_id, str(folder), "report")
    return result


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    parser = argparse.ArgumentParser(prog="harness report", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a sweep's parent run id, a run id, an MLflow experiment name, or a filter string")
    parser.add_argument("--out", default=None, help="folder to write (default: report-<source>)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else $HARNESS_HOME/mlflow.db)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the bootstrap (default 0)")
    parser.add_argument("--n-resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--alpha", type=float, default=0.05, help="level of the Holm-corrected tests (default 0.05)")
    parser.add_argument("--prototypes", action="store_true",
                        help="also draw each model's class prototypes (activation maximisation; models from the cache)")
    parser.add_argument("--no-log", action="store_true", help="do not log the report to the sweep's parent run")
    args = parser.parse_args(argv)
    if args.n_resamples < 100 or not 0 < args.alpha < 1:
        parser.error("--n-resamples must be >= 100 and --alpha in (0, 1)")
    out = Path(args.out or f"report-{''.join(c if c.isalnum() or c in '-_.' else '_' for c in args.source)[:60]}")
    try:
        result = report(args.source, out, args.tracking_uri, args.seed, args.n_resamples, args.alpha, log=not args.no_log,
                        with_prototypes=args.prototypes)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render.markdown_leaderboard(result))
    for line in result.warnings:
        print(f"warning: {line}")
    print(f"\nreport written to {out}")
    return 0
