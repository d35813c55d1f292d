"""Comparative reports from the MLflow store: leaderboard with intervals, significance, agreement, figures.

Public names: :func:`load` (the tidy per-sample frame of a sweep, experiment or filter),
:func:`collect` (that frame with the runs and curves), :func:`analyse` (the numbers),
:func:`report` (collect, analyse and write a folder; ``harness report`` on the command line),
:func:`write`. Modules: :mod:`~harness.report.load`, :mod:`~harness.report.stats`,
:mod:`~harness.report.leaderboard`, :mod:`~harness.report.render`, :mod:`~harness.report.plots`,
:mod:`~harness.report.cli`, :mod:`~harness.report.sanity` (cascade maps per stage, random-labels test).
"""
from harness.report.cli import report, write
from harness.report.leaderboard import Report, analyse
from harness.report.load import Collection, collect, load

__all__ = ["Collection", "Report", "analyse", "collect", "load", "report", "write"]
