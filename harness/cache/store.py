"""A content-addressed on-disk store for generated datasets, trained models and attributions.

An entry lives at ``<cache dir>/<kind>/<key>.pt`` where ``key`` (:mod:`harness.cache.keys`)
is a hash of exactly what determines it: change anything upstream and the key changes,
so a stale entry is never found (it is only left for ``prune``).

Safety, for many processes sharing one cache (parallel sweeps, cluster jobs):

* writes go to a temporary file in the same folder and are renamed into place
  (``os.replace`` is atomic), so a reader never sees half an entry;
* computing an entry holds an exclusive ``fcntl.flock`` on ``<key>.lock``: a second
  process wanting the same entry waits and then reads the first one's result instead
  of computing it again; the kernel drops the lock when its holder dies, so a crashed
  job leaves no stale lock; a wait longer than ``lock_timeout_s`` fails with one line;
* an entry that fails to load (truncated, corrupt, foreign) is reported, recomputed
  and replaced, never used.

The cache folder carries a marker file, ``.harness-cache`` (:data:`MARKER`), written
with the first entry; ``prune`` refuses a folder without it and only ever removes
files whose names match the key format (:data:`KEY_PATTERN`), so pointing it at a
folder of your own deletes nothing.

Each entry has a small ``<key>.json`` beside it (what it is, when it was made), which
``python -m harness.cache list`` shows (:mod:`harness.cache.maintenance`); a hit refreshes
the entry's modification time, so ``prune --older-than`` removes what has not been *used*
for that long.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

log = logging.getLogger(__name__)
T = TypeVar("T")
KINDS = ("datasets", "models", "attributions")
DEFAULT_LOCK_TIMEOUT_S = 6 * 3600.0  # a lock protects a computation (training can take hours)
MARKER = ".harness-cache"
KEY_PATTERN = re.compile(r"[0-9a-f]{16}")  # harness.cache.keys.content_key


def mark(root: Path) -> None:
    """Write the marker that says ``root`` is a harness cache folder (once)."""
    marker = root / MARKER
    if not marker.is_file():
        root.mkdir(parents=True, exist_ok=True)
        marker.write_text("A cache folder of the attribution benchmark harness: python -m harness.cache list | prune\n")


def torch_save(value: Any, path: Path) -> None:
    """``torch.save`` through memory, so the archive's internal folder name is always ``archive``, not the
    temporary file's random name: the same value gives the same bytes in every process."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    Path(path).write_bytes(buffer.getvalue())


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


@contextlib.contextmanager
def file_lock(lock_path: Path, timeout_s: float, what: str, remedy: str) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``lock_path`` (created if missing), waiting at most ``timeout_s``.

    The holder writes its pid and host into the file, so a waiter that times out can say
    who holds it (one-line :class:`TimeoutError` naming ``what`` and the ``remedy``). The
    kernel drops the lock when its holder dies: a crashed process leaves no stale lock.
    """
    with open(lock_path, "a+") as handle:
        deadline = time.monotonic() + timeout_s
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
                raise TimeoutError(f"{what}: waited {timeout_s:.0f} s for the lock held by {holder} ({lock_path}); {remedy}")
            if not told:
                log.info("%s is being prepared by another process; waiting", what)
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


class Store:
    """One kind of entry (``models``, ``datasets``, ``attributions``) under a cache folder."""

    def __init__(self, root: Path | str, kind: str, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.root = Path(root).expanduser().resolve()
        self.kind = kind
        self.folder = self.root / kind
        self.lock_timeout_s = float(lock_timeout_s)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.pt"

    def contains(self, key: str) -> bool:
        """Whether an entry is stored under ``key`` (it may still fail to load)."""
        return self.path(key).is_file()

    # -- locking -----------------------------------------------------------------------
    def lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Hold the exclusive cross-process lock of ``key`` (waits at most ``lock_timeout_s``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        mark(self.root)
        return file_lock(self.folder / f"{key}.lock", self.lock_timeout_s, f"cache {self.kind}/{key}", "raise cache.lock_timeout_s or stop that process")

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
        mark(self.root)
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
