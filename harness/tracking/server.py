"""A local MLflow tracking server in front of the harness's SQLite store.

Parallel sweep workers (joblib, submitit, Ray) must not write to one SQLite file
directly: concurrent writers can fail with "database is locked". A tracking server
serialises their requests and proxies artifact uploads (MLflow's documented set-up
for many clients)::

    python -m harness.tracking.server                   # sqlite:///<paths.root>/mlflow.db on 127.0.0.1:5000
    python -m harness -m hydra/launcher=joblib tracking=server seed=0,1,2

``python -m harness.tracking.server --port 5001 --backend postgresql://user@db/mlflow`` serves
another backend (a team's PostgreSQL, say). :func:`start` and :func:`stop` are what the
tests use: start on a free loopback port, wait (bounded) for ``/health``, and stop the
server's process group by its process id. The command stops that group (``mlflow
server`` and its workers) when it gets SIGTERM, SIGHUP or Ctrl-C, or exits for any
other reason (:func:`serve`); only SIGKILL can leave it behind.
"""
from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.build import ConfigError


@dataclass
class Server:
    process: subprocess.Popen
    uri: str
    log_path: Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def command(backend: str, artifacts: Path, host: str, port: int, workers: int = 1) -> list[str]:
    mlflow = shutil.which("mlflow")
    head = [mlflow] if mlflow else [sys.executable, "-m", "mlflow"]
    return head + [
        "server", "--backend-store-uri", backend, "--artifacts-destination", str(artifacts),
        "--host", host, "--port", str(port), "--workers", str(workers),
    ]


def healthy(uri: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def start(root: Path, host: str = "127.0.0.1", port: int | None = None, backend: str | None = None,
          wait_s: float = 120.0) -> Server:
    """Start ``mlflow server`` for ``root`` (its SQLite store and artifacts) and wait until it answers."""
    root = Path(root).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    uri = f"http://{host}:{port}"
    log_path = root / f"mlflow-server-{port}.log"
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command(backend or f"sqlite:///{root / 'mlflow.db'}", root / "mlartifacts", host, port),
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,  # own group: stop() ends its workers too
        )
    server = Server(process, uri, log_path)
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-500:]
                raise RuntimeError(f"mlflow server exited with {process.returncode}: {' '.join(tail.split())}")
            if healthy(uri):
                return server
            time.sleep(0.5)
    except BaseException:  # a signal (or Ctrl-C) while waiting: leave nothing behind
        stop(server)
        raise
    stop(server)
    raise TimeoutError(f"mlflow server at {uri} did not answer /health within {wait_s:.0f} s (log: {log_path})")


def stop(server: Server, grace_s: float = 3.0) -> None:
    """Stop the server's process group (its id is the server's pid): SIGTERM, then SIGKILL after ``grace_s``."""
    pid = server.process.pid
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        try:
            server.process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.tracking.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", help="harness home (default: $HARNESS_HOME or .harness)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--backend", help="backend store URI (default: sqlite:///<root>/mlflow.db)")
    args = parser.parse_args()
    root = Path(args.root or os.environ.get("HARNESS_HOME", ".harness"))
    exit_on_signals()  # before the server exists: a SIGTERM while it starts stops it too
    try:
        server = start(root, args.host, args.port, args.backend)
    except (RuntimeError, TimeoutError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"MLflow tracking server at {server.uri} (pid {server.process.pid}, log {server.log_path}); Ctrl-C stops it.\n"
          f"  python -m harness -m hydra/launcher=joblib tracking.uri={server.uri} ...", flush=True)
    serve(server)


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP raise ``SystemExit`` (like Ctrl-C raises KeyboardInterrupt), so ``finally`` blocks stop the server."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def serve(server: Server) -> None:
    """Wait for the server; on SIGTERM, SIGHUP, Ctrl-C or any exit of this process, stop its whole process group."""
    atexit.register(stop, server)
    exit_on_signals()
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(server)
        atexit.unregister(stop)


if __name__ == "__main__":
    main()
