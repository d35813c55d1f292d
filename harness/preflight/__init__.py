"""Pre-flight: every check that can fail, run before any data is generated, model trained or run created.

Public names: :func:`check` (a whole command line: every swept value composed and built,
the launcher's plugin, the tracking store, the sweep's cost estimate;
:mod:`harness.preflight.command_line`) and the run-setting checks the runner's ``prepare``
applies to each composed config (:mod:`harness.preflight.settings`): :func:`check_run_settings`,
:func:`check_needs`, :func:`resolve_device`.
"""
from harness.preflight.command_line import check
from harness.preflight.settings import check_needs, check_run_settings, resolve_device

__all__ = ["check", "check_needs", "check_run_settings", "resolve_device"]
