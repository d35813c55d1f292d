"""SIGTERM ends a run as KILLED, dead runs of this host are closed when any run starts, the server leaves nothing behind."""
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from harness import tracking
from harness.runner import Terminated, run
from harness.sweeps import resume
from harness.tracking.server import Server, exit_on_signals, serve


class TerminatedExplainer:
    """Stands in for SIGTERM (timeout, Slurm, Kubernetes) arriving while the attributions are computed."""

    def __call__(self, model, inputs, targets):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # the handler interrupts this
        raise AssertionError("SIGTERM was not handled")

    def forward_passes_per_sample(self, shape):
        return 1


def test_sigterm_mid_attribution_kills_the_run_and_a_new_run_closes_dead_ones(make_cfg):
    cfg = make_cfg("~method", "+method._target_=tests.harness.tracking.test_signals.TerminatedExplainer", "seed=14",
                   "tracking.experiment=sigterm")
    uri = tracking.tracking_uri(cfg)
    client = MlflowClient(uri)
    experiment = tracking.experiment_id(uri, "sigterm", tracking.artifact_root(cfg, uri))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = client.create_run(experiment, tags={resume.PROCESS_TAG: resume.process_token(child.pid)}).info.run_id
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated, match="SIGTERM"):
        run(cfg)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the run's only
    assert client.get_run(dead).info.status == "KILLED"  # a single run closes what SIGKILL left RUNNING
    runs = client.search_runs([experiment], filter_string="tags.`harness.method` = 'TerminatedExplainer'")
    assert [r.info.status for r in runs] == ["KILLED"]


def serving(pids) -> None:
    """The server command after start(): its handlers, then serve() on a stand-in for mlflow server and its workers."""
    exit_on_signals()  # as main() does before starting the server
    group = subprocess.Popen(["sh", "-c", "sleep 600 & wait"], start_new_session=True)  # a process group: a shell and its child
    pids.put(group.pid)
    serve(Server(group, "", Path("unused")))


def live_members(group: int) -> list[int]:
    """Processes of the process group that still run (zombies, which nobody reaped yet in a container, do not)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group and fields[0] != "Z":
                members.append(int(entry))
    return members


@pytest.mark.skipif(not os.path.isdir("/proc") or "fork" not in multiprocessing.get_all_start_methods(),
                    reason="reads process groups from /proc; forks the test process")
@pytest.mark.parametrize("sig", [signal.SIGTERM])  # SIGINT and SIGHUP take the same path (serve)
def test_server_command_stops_the_servers_whole_process_group(sig):
    context = multiprocessing.get_context("fork")  # forked: nothing to import again, so it costs a fraction of a second
    pids = context.Queue()
    command = context.Process(target=serving, args=(pids,))
    command.start()
    group = pids.get(timeout=30)
    assert live_members(group)
    os.kill(command.pid, sig)
    command.join(timeout=30)
    assert command.exitcode == 128 + sig  # SystemExit from the handler, after serve() stopped the group
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not live_members(group):
            return
        time.sleep(0.1)
    pytest.fail(f"process group {group} still runs after {sig.name} to the command")
