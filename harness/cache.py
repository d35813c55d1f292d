"""A content-addressed on-disk store for generated datasets, trained models and attributions.

An entry lives at ``<cache dir>/<kind>/<key>.pt`` where ``key`` is a SHA-256 of exactly
what determines it (:func:`content_key`): change anything upstream and the key changes,
so a stale entry is never found (it is only left for ``prune``). Keys chain: the
attribution key contains the model key, which contains the dataset config, so a new
dataset invalidates its models and their attributions.

Safety, for many processes sharing one cache (parallel sweeps, cluster jobs):

* writes go to a temporary file in the same folder and are renamed into place
  (``os.replace`` is atomic), so a reader never sees half an entry;
* computing an entry holds an exclusive ``fcntl.flock`` on ``<key>.lock``: a second
  process wanting the same entry waits and then reads the first one's result instead
  of computing it again; the kernel drops the lock when its holder dies, so a crashed
  job leaves no stale lock; a wait longer than ``lock_timeout_s`` fails with one line;
* an entry that fails to load (truncated, corrupt, foreign) is reported, recomputed
  and replaced, never used.

Each entry has a small ``<key>.json`` beside it (what it is, when it was made), which
``python -m harness.cache list`` shows; a hit refreshes the entry's modification time,
so ``prune --older-than`` removes what has not been *used* for that long.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import inspect
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import torch

from harness.build import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")
KINDS = ("datasets", "models", "attributions")
DEFAULT_LOCK_TIMEOUT_S = 6 * 3600.0  # a lock protects a computation (training can take hours)


def content_key(identity: Any) -> str:
    """16 hex digits of the SHA-256 of ``identity`` as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def code_fingerprint(obj: Any) -> str:
    """A hash of the source file that defines ``obj``'s class (or ``obj`` itself if it is a class/function).

    Part of a key where the entry is computed by that code (a dataset generator, an
    explainer): editing the code then invalidates the entries it made.
    """
    target = obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj)
    try:
        source = Path(inspect.getsourcefile(target) or "").read_bytes()
    except (TypeError, OSError):
        return f"{target.__module__}.{target.__qualname__}"
    return hashlib.sha256(source).hexdigest()[:16]


def target_fingerprint(node: Any) -> str:
    """:func:`code_fingerprint` of the class or function a config node's ``_target_`` names."""
    target = str(node.get("_target_", "")) if hasattr(node, "get") else ""
    if not target:
        return ""
    try:
        from hydra.utils import get_object

        return code_fingerprint(get_object(target))
    except Exception:  # not importable here: the name still identifies it
        return target


def torch_save(value: Any, path: Path) -> None:
    torch.save(value, path)


def torch_load(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


@dataclass
class Entry:
    kind: str
    key: str
    path: Path
    size: int
    last_used: float
    about: str


class Store:
    """One kind of entry (``models``, ``datasets``, ``attributions``) under a cache folder."""

    def __init__(self, root: Path | str, kind: str, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.root = Path(root).expanduser().resolve()
        self.kind = kind
        self.folder = self.root / kind
        self.lock_timeout_s = float(lock_timeout_s)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.pt"

    # -- locking -----------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the exclusive cross-process lock of ``key`` (waits at most ``lock_timeout_s``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock_path = self.folder / f"{key}.lock"
        with open(lock_path, "a+") as handle:
            deadline = time.monotonic() + self.lock_timeout_s
            told = False
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() > deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise TimeoutError(
                        f"cache {self.kind}/{key}: waited {self.lock_timeout_s:.0f} s for the lock held by {holder} "
                        f"({lock_path}); raise cache.lock_timeout_s or stop that process"
                    )
                if not told:
                    log.info("cache %s/%s is being computed by another process; waiting", self.kind, key)
                    told = True
                time.sleep(0.2)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {os.uname().nodename}")
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- reading and writing -------------------------------------------------------------
    def load(self, key: str, load: Callable[[Path], T] = torch_load) -> T | None:
        """The entry's value, or None if it is missing or unreadable (an unreadable one is reported)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            value = load(path)
        except Exception as error:  # truncated, corrupt or foreign: recompute and replace
            log.warning("cache entry %s is unreadable (%s); recomputing it", path, " ".join(str(error).split())[:200])
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # last use, for prune --older-than
        return value

    def save(self, key: str, value: Any, save: Callable[[Any, Path], None] = torch_save, about: str = "") -> Path:
        """Write the entry atomically (temporary file, then rename)."""
        path = self.path(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{key}.", suffix=".tmp")
        os.close(fd)
        try:
            save(value, Path(tmp))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        meta = {"kind": self.kind, "key": key, "about": about, "created": time.time()}
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{key}.", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(meta, handle)
        os.replace(tmp, self.folder / f"{key}.json")
        return path

    def fetch(
        self, key: str, compute: Callable[[], T], load: Callable[[Path], T] = torch_load,
        save: Callable[[T, Path], None] = torch_save, about: str = "",
    ) -> tuple[T, bool]:
        """``(value, hit)``: the stored entry, or ``compute()`` saved under ``key``.

        Holds the key's lock while computing, so concurrent processes compute it once.
        """
        value = self.load(key, load)
        if value is not None:
            return value, True
        with self.lock(key):
            value = self.load(key, load)  # computed by another process while we waited
            if value is not None:
                return value, True
            value = compute()
            self.save(key, value, save, about)
            return value, False


def store(cache_dir: Path | str, kind: str, cache_cfg: Any = None) -> Store:
    timeout = DEFAULT_LOCK_TIMEOUT_S
    if cache_cfg is not None and cache_cfg.get("lock_timeout_s") is not None:
        timeout = float(cache_cfg.lock_timeout_s)
    return Store(cache_dir, kind, timeout)


# -- listing and pruning (python -m harness.cache) ------------------------------------------
def entries(root: Path | str, kinds: tuple[str, ...] = KINDS) -> list[Entry]:
    root = Path(root).expanduser().resolve()
    found = []
    for kind in kinds:
        for path in sorted((root / kind).glob("*.pt")):
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
    if unit not in units or value < 0:
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


def main() -> None:
    try:
        print(command(sys.argv[1:]))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
