"""Reports: the tables and figures a person reads.

Public names: :func:`summary`, :func:`render_summary`, :func:`sweep_table`, :func:`bootstrap_interval`
(:mod:`harness.reports.tables`); the figures :mod:`harness.reports.figures` draws (heat maps, curves).
"""
from harness.reports.tables import bootstrap_interval, fmt, render_summary, summary, sweep_table

__all__ = ["bootstrap_interval", "fmt", "render_summary", "summary", "sweep_table"]
