"""The content-addressed cache: keys, atomic entries, cross-process locking, corrupt entries, the command."""
import multiprocessing
import os
import sys
import time

import pytest
import torch

from harness.build import ConfigError
from harness.cache import Store, content_key
from harness.cache.maintenance import command, entries, parse_age


def test_key_is_a_hash_of_the_content_independent_of_key_order():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1, "b": [1, 2]}) != content_key({"a": 1, "b": [2, 1]})
    assert len(content_key({})) == 16 and int(content_key({}), 16) >= 0


def test_fetch_computes_once_then_hits_and_leaves_no_temporary_files(tmp_path):
    store, calls = Store(tmp_path, "attributions"), []
    compute = lambda: calls.append(1) or torch.arange(6.0)  # noqa: E731
    key = content_key("six numbers")
    first, hit_first = store.fetch(key, compute, about="six numbers")
    second, hit_second = store.fetch(key, compute)
    assert (hit_first, hit_second) == (False, True) and len(calls) == 1
    assert torch.equal(first, second)
    assert sorted(p.name for p in (tmp_path / "attributions").iterdir()) == [f"{key}.json", f"{key}.lock", f"{key}.pt"]
    assert entries(tmp_path)[0].about == "six numbers"


def test_corrupt_entry_is_recomputed_and_replaced(tmp_path):
    store = Store(tmp_path, "models")
    store.fetch("k", lambda: torch.ones(100))
    path = store.path("k")
    path.write_bytes(path.read_bytes()[:50])  # truncated, as by a crash elsewhere
    value, hit = store.fetch("k", lambda: torch.full((100,), 2.0))
    assert not hit and torch.equal(value, torch.full((100,), 2.0))
    assert torch.equal(store.fetch("k", lambda: torch.zeros(1))[0], torch.full((100,), 2.0))


def _compute_slowly(root, log_path, out_path):
    def compute():
        with open(log_path, "a") as log:
            log.write(f"{os.getpid()}\n")
        time.sleep(1.0)
        return torch.arange(1000.0)

    value, hit = Store(root, "attributions").fetch("same", compute)
    torch.save({"value": value, "hit": hit}, out_path)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="forks the test process")
def test_two_processes_wanting_the_same_entry_compute_it_once(tmp_path):
    context = multiprocessing.get_context("fork")  # forked: torch is not imported again (spawn cost ~20 s on 2 shared cores)
    log = tmp_path / "computed.log"
    workers = [context.Process(target=_compute_slowly, args=(tmp_path / "cache", log, tmp_path / f"out{i}.pt")) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert len(log.read_text().split()) == 1  # one computation; the other process waited and read it
    outs = [torch.load(tmp_path / f"out{i}.pt") for i in range(2)]
    assert sorted(o["hit"] for o in outs) == [False, True]
    assert torch.equal(outs[0]["value"], outs[1]["value"])


def test_waiting_longer_than_the_lock_timeout_fails_in_one_line(tmp_path):
    holder, waiter = Store(tmp_path, "models"), Store(tmp_path, "models", lock_timeout_s=0.3)
    with holder.lock("busy"):
        with pytest.raises(TimeoutError) as info:
            waiter.fetch("busy", lambda: torch.zeros(1))
    message = str(info.value)
    assert "\n" not in message and "cache.lock_timeout_s" in message and f"pid {os.getpid()}" in message
    assert waiter.fetch("busy", lambda: torch.zeros(1))[1] is False  # lock released: computes now


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800), ("1w", 604800), ("0.5d", 43200)])
def test_ages_parse_to_seconds(text, seconds):
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["7", "7x", "d", "-1d", "nand", "infd", "-infd", "1e400d"])
def test_bad_ages_are_one_line_errors(text):
    with pytest.raises(ConfigError, match="--older-than must be a number with a unit"):
        parse_age(text)


KEYS = {"models": content_key("a model"), "attributions": content_key("some maps")}


def test_prune_refuses_a_folder_the_harness_did_not_make(tmp_path):
    mine = tmp_path / "models" / "my_best_model.pt"
    mine.parent.mkdir()
    mine.write_bytes(b"weights I trained myself")
    with pytest.raises(ConfigError, match="has no .harness-cache marker.*refusing to delete anything"):
        command(["prune", "--all", "--dir", str(tmp_path)])
    assert mine.read_bytes() == b"weights I trained myself"


def test_prune_removes_only_files_named_like_its_keys(tmp_path):
    Store(tmp_path, "models").fetch(KEYS["models"], lambda: torch.zeros(1))
    assert (tmp_path / ".harness-cache").is_file()  # written with the first entry
    mine, other_tmp = tmp_path / "models" / "my_best_model.pt", tmp_path / "models" / ".notes.tmp"
    mine.write_bytes(b"mine")
    other_tmp.write_bytes(b"mine too")
    os.utime(other_tmp, (time.time() - 3 * 86400,) * 2)
    assert "deleted 1 of 1 entries" in command(["prune", "--all", "--dir", str(tmp_path)])
    assert mine.exists() and other_tmp.exists() and not Store(tmp_path, "models").path(KEYS["models"]).exists()


def test_command_lists_and_prunes_by_last_use(tmp_path):
    for kind in ("models", "attributions"):
        Store(tmp_path, kind).fetch(KEYS[kind], lambda: torch.zeros(10), about=f"a {kind} entry")
    old = Store(tmp_path, "models").path(KEYS["models"])
    os.utime(old, (time.time() - 10 * 86400,) * 2)  # last used ten days ago

    listed = command(["list", "--dir", str(tmp_path)])
    assert "a models entry" in listed and "2 entries" in listed
    dry = command(["prune", "--older-than", "7d", "--dry-run", "--dir", str(tmp_path)])
    assert f"would delete models/{KEYS['models']}" in dry and old.exists()
    pruned = command(["prune", "--older-than", "7d", "--dir", str(tmp_path)])
    assert "deleted 1 of 2 entries" in pruned
    assert not old.exists() and Store(tmp_path, "attributions").path(KEYS["attributions"]).exists()


def test_prune_removes_temporary_files_of_killed_writers_but_not_fresh_ones(tmp_path):
    key = KEYS["models"]
    Store(tmp_path, "models").fetch(key, lambda: torch.zeros(1))
    stale, fresh = tmp_path / "models" / f".{key}.abc.tmp", tmp_path / "models" / f".{key}.def.tmp"
    stale.write_bytes(b"half an entry")
    fresh.write_bytes(b"being written now")
    os.utime(stale, (time.time() - 2 * 86400,) * 2)  # older than the 1d asked for
    assert "removed 1 temporary files" in command(["prune", "--older-than", "1d", "--dir", str(tmp_path)])
    assert not stale.exists() and fresh.exists() and Store(tmp_path, "models").path(key).exists()


@pytest.mark.parametrize("args, message", [
    (["prune"], "prune needs exactly one of --older-than AGE (e.g. 7d) or --all"),
    (["prune", "--all", "--older-than", "1d"], "prune needs exactly one of"),
    (["prune", "--older-than", "soon"], "--older-than must be a number with a unit"),
    (["lst"], "argument action: invalid choice: 'lst'"),
    (["list", "--kind", "weights"], "argument --kind: invalid choice: 'weights'"),
    (["list", "--all"], "--older-than, --all and --dry-run belong to prune, not list"),
])
def test_command_bad_arguments_are_one_line_errors(args, message, tmp_path):
    with pytest.raises(ConfigError) as info:
        command([*args, "--dir", str(tmp_path)])
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_command_line_exits_2_with_the_one_line(tmp_path, monkeypatch, capsys):
    from harness.cache.__main__ import main  # the command's entry point, in-process (a subprocess costs ~10 s here)

    monkeypatch.setattr(sys, "argv", ["harness.cache", "prune", "--older-than", "7", "--dir", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: --older-than must be a number with a unit s, m, h, d or w (e.g. 7d); got '7'\n"


def test_the_same_value_is_stored_as_the_same_bytes_whatever_the_temporary_file(tmp_path):
    value = {"state_dict": {"w": torch.arange(6.0)}, "summary": {"test_accuracy": 0.5}}
    key = content_key("bytes")
    first, second = Store(tmp_path / "a", "models").save(key, value), Store(tmp_path / "b", "models").save(key, value)
    assert first.read_bytes() == second.read_bytes()
