"""``python -m harness [overrides]``: check the command line, then hand it to Hydra.

``harness report SOURCE ...`` (a first word ``report``, which no Hydra override is) runs
the report command instead (:mod:`harness.report.cli`).
"""
from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if sys.argv[1:2] == ["report"]:
        from harness.report.cli import main as report_main

        sys.exit(report_main(sys.argv[2:]))
    from harness.build import ConfigError
    from harness.preflight import check

    try:
        check(sys.argv[1:])
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    from harness.app import main as hydra_main

    hydra_main()


if __name__ == "__main__":
    main()
