"""Listing and pruning the cache: what ``python -m harness.cache list | prune`` does.

``list`` shows every entry (kind, key, size, last use, what it is); ``prune`` deletes
entries not used for ``--older-than`` (or ``--all``), never one a process is computing
(its lock is held), and removes temporary files left by writers killed mid-write once
they are over an hour old. ``--dry-run`` says what would go. Prune refuses a folder
without the harness's marker (:data:`harness.cache.store.MARKER`) and only considers
files named like its keys, so it never deletes what the harness did not make.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from pathlib import Path

from harness.build import ConfigError
from harness.cache.store import KEY_PATTERN, KINDS, MARKER, Entry, Store


def entries(root: Path | str, kinds: tuple[str, ...] = KINDS) -> list[Entry]:
    root = Path(root).expanduser().resolve()
    found = []
    for kind in kinds:
        for path in sorted((root / kind).glob("*.pt")):
            if not KEY_PATTERN.fullmatch(path.stem):
                continue  # not named like a harness key: not ours
            meta_path = path.with_suffix(".json")
            about = ""
            with contextlib.suppress(OSError, ValueError):
                about = json.loads(meta_path.read_text()).get("about", "")
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                found.append(Entry(kind, path.stem, path, stat.st_size, stat.st_mtime, about))
    return found


def remove(entry: Entry) -> bool:
    """Delete an entry unless a process holds its lock (is computing it); True if deleted.

    The lock file itself stays: deleting it could let two processes lock different files.
    """
    try:
        with Store(entry.path.parent.parent, entry.kind, lock_timeout_s=0).lock(entry.key):
            for path in (entry.path, entry.path.with_suffix(".json")):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
    except TimeoutError:
        return False
    return True


def leftover_temporaries(root: Path | str, kinds: tuple[str, ...], older_than_s: float) -> list[Path]:
    """Temporary files of writers killed mid-write (``.<key>.*.tmp``), untouched for ``older_than_s`` (at least an hour)."""
    cutoff = time.time() - max(older_than_s, 3600.0)
    found = []
    for kind in kinds:
        for path in Path(root).expanduser().resolve().joinpath(kind).glob(".*.tmp"):
            if not KEY_PATTERN.fullmatch(path.name[1:].split(".", 1)[0]):
                continue
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    found.append(path)
    return found


def parse_age(text: str) -> float:
    """Seconds in ``30s``, ``15m``, ``12h``, ``7d`` or ``2w``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    number, unit = text[:-1], text[-1:].lower()
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in units or not math.isfinite(value) or value < 0:
        raise ConfigError(f"--older-than must be a number with a unit s, m, h, d or w (e.g. 7d); got {text!r}")
    return value * units[unit]


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


# -- the command ------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise ConfigError(f"{message}; usage: python -m harness.cache list|prune [--older-than AGE | --all] [--kind {'|'.join(KINDS)}] [--dir DIR] [--dry-run]")


def default_dir() -> Path:
    """``paths.cache`` of the composed config (so ``HARNESS_HOME`` and the config tree decide)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module("conf", version_base="1.3"):
        cfg = compose("config")
    GlobalHydra.instance().clear()
    return Path(str(cfg.paths.cache)).expanduser().resolve()


def command(argv: list[str]) -> str:
    parser = _Parser(prog="python -m harness.cache", description="List or prune the dataset, model and attribution cache.")
    parser.add_argument("action", choices=("list", "prune"))
    parser.add_argument("--dir", help="cache folder (default: paths.cache of the config)")
    parser.add_argument("--kind", choices=KINDS, action="append", help="only this kind (repeatable)")
    parser.add_argument("--older-than", help="prune entries not used for this long: 30m, 12h, 7d, 2w")
    parser.add_argument("--all", action="store_true", help="prune every entry")
    parser.add_argument("--dry-run", action="store_true", help="say what prune would delete; delete nothing")
    args = parser.parse_args(argv)
    root = Path(args.dir).expanduser().resolve() if args.dir else default_dir()
    if args.dir and not root.is_dir():
        raise ConfigError(f"--dir {root} is not a folder")
    kinds = tuple(args.kind or KINDS)
    found = entries(root, kinds)
    now = time.time()
    if args.action == "list":
        if args.older_than or args.all or args.dry_run:
            raise ConfigError("--older-than, --all and --dry-run belong to prune, not list")
        lines = [f"{e.kind:<13} {e.key}  {human_size(e.size):>10}  used {(now - e.last_used) / 86400:6.1f} d ago  {e.about}" for e in found]
        total = human_size(sum(e.size for e in found))
        return "\n".join(lines + [f"{len(found)} entries, {total} in {root}"])
    if bool(args.older_than) == args.all:
        raise ConfigError("prune needs exactly one of --older-than AGE (e.g. 7d) or --all")
    cutoff = now - parse_age(args.older_than) if args.older_than else float("inf")
    if not (root / MARKER).is_file():
        raise ConfigError(f"{root} has no {MARKER} marker, so it is not a harness cache folder; refusing to delete anything "
                          f"(give --dir the folder paths.cache names; an old harness cache: create {root / MARKER} first)")
    chosen = [e for e in found if e.last_used < cutoff]
    if args.dry_run:
        lines = [f"would delete {e.kind}/{e.key} ({human_size(e.size)}) {e.about}" for e in chosen]
        return "\n".join(lines + [f"{len(chosen)} of {len(found)} entries would be deleted ({human_size(sum(e.size for e in chosen))})"])
    deleted = [e for e in chosen if remove(e)]
    busy = len(chosen) - len(deleted)
    note = f"; {busy} skipped (being computed now)" if busy else ""
    leftovers = leftover_temporaries(root, kinds, now - cutoff if args.older_than else 0.0)
    for path in leftovers:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if leftovers:
        note += f"; removed {len(leftovers)} temporary files left by interrupted writes"
    return f"deleted {len(deleted)} of {len(found)} entries ({human_size(sum(e.size for e in deleted))}) from {root}{note}"
