"""``harness [overrides]`` (the console script) or ``python -m harness``: check the command line, then hand it to Hydra.

``python -m`` puts the working directory first on ``sys.path``, so a user's ``metrics.py``
or ``conf/`` package there would be imported instead of the harness's own packages;
:func:`shadowing` finds such a module first and the command stops naming its file (the
``harness`` console script does not put the working directory on the path). ``--help``
prints the config groups with their options (:mod:`harness.config_help`) before Hydra's help.

Ctrl-C, or SIGTERM during a run, ends the command with one line and exit status 130 or 143
(the shell's 128 + signal number); the run itself is marked KILLED by the runner.

``harness report SOURCE ...`` (a first word ``report``, which no Hydra override is) runs
the report command instead (:mod:`harness.report.cli`).
"""
from __future__ import annotations

import importlib.machinery
import os
import signal
import sys
from pathlib import Path

OWN = ("conf", "methods", "metrics", "harness")  # the top-level names this project installs
ROOT = Path(__file__).resolve().parent.parent     # where this harness's packages live


def shadowing(path_entries: list[str] | None = None, cwd: str | None = None) -> str | None:
    """One line naming a module in the working directory that hides one of :data:`OWN`, or None.

    Only the working directory is checked, and only when it is on ``sys.path`` (``python -m``
    and ``python script.py`` put it there; the console script does not). A module there that
    *is* this harness's own (running from a source checkout) is fine.
    """
    cwd = os.path.abspath(cwd or os.getcwd())
    entries = sys.path if path_entries is None else path_entries
    if not any(os.path.abspath(entry or ".") == cwd for entry in entries):
        return None
    for name in OWN:
        spec = importlib.machinery.PathFinder.find_spec(name, [cwd])
        if spec is None or not spec.origin or spec.origin == "namespace" or not os.path.exists(spec.origin):
            continue  # absent, or a plain folder (a namespace portion never hides an installed package)
        origin = Path(spec.origin).resolve()
        if origin.is_relative_to(ROOT / name) or origin == ROOT / f"{name}.py":
            continue
        shown = os.path.relpath(origin.parent if origin.name == "__init__.py" else origin, cwd)
        shown += "/" if origin.name == "__init__.py" else ""
        return (f"{shown} in the working directory shadows the harness's `{name}` package (python -m puts the working "
                f"directory first on sys.path); run the `harness` command instead, run from another directory, or rename {shown}")
    return None


def main() -> None:
    clash = shadowing()
    if clash:
        print(f"error: {clash}", file=sys.stderr)
        sys.exit(2)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if sys.argv[1:2] == ["report"]:
        from harness.report.cli import main as report_main

        sys.exit(report_main(sys.argv[2:]))
    if any(arg in ("--help", "-h") for arg in sys.argv[1:]):
        from harness.config_help import render

        print(render(), flush=True)
    from harness.build import ConfigError
    from harness.preflight import check

    try:
        check(sys.argv[1:])
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    from harness.app import main as hydra_main
    from harness.runner import Terminated

    try:
        hydra_main()
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM during a run (Terminated): that run is already marked KILLED
        print(f"stopped: {str(stop) or 'interrupted'} (a run in progress is marked KILLED)", file=sys.stderr)
        sys.exit(128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT))  # 143 / 130, as the shell reports


if __name__ == "__main__":
    main()
