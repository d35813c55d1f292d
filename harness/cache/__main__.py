"""``python -m harness.cache list | prune [--older-than AGE | --all] [--kind KIND] [--dir DIR] [--dry-run]``."""
from __future__ import annotations

import sys

from harness.build import ConfigError
from harness.cache.maintenance import command


def main() -> None:
    try:
        print(command(sys.argv[1:]))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
