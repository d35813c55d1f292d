"""The command's entry: a module in the working directory that shadows ours is named in one line; --help lists the config tree."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import conf
from harness.__main__ import main, shadowing
from harness.config_help import groups

REPO = Path(__file__).resolve().parents[2]


def test_python_m_harness_names_a_shadowing_metrics_py_in_one_line(tmp_path):
    (tmp_path / "metrics.py").write_text("accuracy = 1\n")  # a user's own helper file
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "harness"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: metrics.py in the working directory shadows the harness's `metrics` package")


@pytest.mark.parametrize("make, named", [
    (lambda d: (d / "conf").mkdir() or (d / "conf" / "__init__.py").write_text(""), "conf/"),
    (lambda d: (d / "methods.py").write_text(""), "methods.py"),
    (lambda d: (d / "harness.py").write_text(""), "harness.py"),
])
def test_each_of_our_top_level_names_is_checked(tmp_path, make, named):
    make(tmp_path)
    message = shadowing([str(tmp_path)], cwd=str(tmp_path))
    assert message.startswith(f"{named} in the working directory shadows") and "\n" not in message


def test_harmless_working_directories_pass(tmp_path):
    (tmp_path / "conf").mkdir()                     # a folder of the user's own YAMLs (a namespace portion hides nothing)
    (tmp_path / "conf" / "mine.yaml").write_text("a: 1\n")
    assert shadowing([str(tmp_path)], cwd=str(tmp_path)) is None
    (tmp_path / "metrics.py").write_text("")
    assert shadowing(["/elsewhere"], cwd=str(tmp_path)) is None   # the console script: the working directory is not on the path
    assert shadowing([str(REPO)], cwd=str(REPO)) is None          # a source checkout's own packages


def test_help_lists_every_group_and_option_with_a_description_then_hydras_help(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["harness", "--help"])
    with pytest.raises(SystemExit) as done:
        main()
    out = capsys.readouterr().out
    assert done.value.code in (0, None) and "Powered by Hydra" in out
    ours = out.split("Hydra's own help follows.")[0]
    tree = Path(conf.__file__).parent
    for yaml in tree.rglob("*.yaml"):
        if yaml.parent != tree:
            assert f"  {yaml.parent.relative_to(tree).as_posix()}\n" in ours and f"    {yaml.stem} " in ours
    listed = groups()
    assert listed["method"]["integrated_gradients"] == "Integrated Gradients (Sundararajan et al. 2017)."
    assert listed["model"]["custom"].startswith("Your own network") and all(all(d for d in g.values()) for g in listed.values())


@pytest.mark.parametrize("stop, code, line", [
    ("Terminated", 143, "stopped: received signal SIGTERM (a run in progress is marked KILLED)"),
    ("KeyboardInterrupt", 130, "stopped: interrupted (a run in progress is marked KILLED)"),
])
def test_sigterm_or_ctrl_c_during_a_run_ends_the_command_in_one_line_with_the_shells_status(monkeypatch, capsys, tmp_path, stop, code, line):
    # What reaches main() when the runner turns SIGTERM into Terminated (test_signals.py checks that the run is KILLED).
    import harness.app
    from harness import runner

    def interrupted():
        raise runner.Terminated("received signal SIGTERM") if stop == "Terminated" else KeyboardInterrupt()

    monkeypatch.setattr(harness.app, "main", interrupted)
    monkeypatch.setattr(sys, "argv", ["harness"])
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == code and capsys.readouterr().err.strip().splitlines() == [line]
