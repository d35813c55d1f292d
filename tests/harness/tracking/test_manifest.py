"""The run manifest: git commit and dirty flag (or "unknown"), hashes of the weights and the data, and identical reruns."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from harness.datasets import ImageSplit
from harness.runner import run
from harness.tracking import manifest


def test_git_state_is_unknown_outside_a_checkout_and_without_git(tmp_path, monkeypatch):
    assert manifest.git_state.__wrapped__(tmp_path) == {"commit": "unknown", "dirty": "unknown"}
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable anywhere on the path
    assert manifest.git_state.__wrapped__(manifest.SOURCE) == {"commit": "unknown", "dirty": "unknown"}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_state_gives_the_commit_and_turns_dirty_when_a_tracked_file_changes(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    (tmp_path / "untracked.txt").write_text("not counted")
    assert manifest.git_state.__wrapped__(tmp_path) == {"commit": git("rev-parse", "HEAD"), "dirty": False}
    (tmp_path / "a.py").write_text("x = 2\n")
    assert manifest.git_state.__wrapped__(tmp_path)["dirty"] is True
    # a folder inside a repository that is not its root is not "the checkout of the code"
    (tmp_path / "sub").mkdir()
    assert manifest.git_state.__wrapped__(tmp_path / "sub")["commit"] == "unknown"


def test_weights_hash_follows_the_bytes_of_the_state_dict():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    b = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    b.load_state_dict(a.state_dict())
    assert manifest.weights_hash(a) == manifest.weights_hash(b)
    with torch.no_grad():
        b[0].weight[0, 0] += 1e-7  # one float's last bits
    assert manifest.weights_hash(a) != manifest.weights_hash(b)
    c = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    c.load_state_dict(a.state_dict())
    c[1].num_batches_tracked += 1  # buffers count too
    assert manifest.weights_hash(a) != manifest.weights_hash(c)


def test_inputs_hash_does_not_depend_on_the_batch_and_sees_every_byte():
    images, labels = torch.rand(6, 1, 4, 4), torch.arange(6)
    masks = torch.rand(6, 1, 4, 4) > 0.5
    split = ImageSplit(images, labels, masks)
    idx = torch.tensor([4, 0, 2])
    assert manifest.inputs_hash(split, idx, batch=1) == manifest.inputs_hash(split, idx, batch=256)
    assert manifest.inputs_hash(split, idx) != manifest.inputs_hash(split, idx.flip(0))   # the evaluation order
    changed = masks.clone()
    changed[2, 0, 0, 0] = ~changed[2, 0, 0, 0]
    assert manifest.inputs_hash(split, idx) != manifest.inputs_hash(ImageSplit(images, labels, changed), idx)


@pytest.mark.slow
def test_the_same_run_twice_gives_identical_values_weights_and_data(make_cfg, tmp_path):
    """Two runs of one tiny config, each training its model and computing its maps afresh (own cache folders)."""
    outcomes, found = [], []
    for k in range(2):
        cfg = make_cfg("seed=17", "method=integrated_gradients", "method.n_steps=4", "metric=[deletion]",
                       f"paths.cache={tmp_path / str(k)}", "cache.datasets=false", "tracking.heatmaps=0")
        outcomes.append(run(cfg))
        client = MlflowClient()
        found.append(json.loads(Path(client.download_artifacts(outcomes[-1].run_id, "manifest.json")).read_text()))
    first, second = outcomes
    assert first.run_id != second.run_id and first.headline() == second.headline()
    for name in first.results:
        assert torch.equal(first.results[name].scores, second.results[name].scores), name
    assert found[0]["weights_sha256"] == found[1]["weights_sha256"] and len(found[0]["weights_sha256"]) == 64
    assert found[0]["data_sha256"] == found[1]["data_sha256"] and found[0]["data_hash_of"] == "evaluation inputs"
    assert found[0]["seed"] == 17 and found[0]["config"]["method"]["n_steps"] == 4
    assert found[0]["project"]["commit"] == manifest.git_state()["commit"]
    tags = client.get_run(first.run_id).data.tags
    assert tags["harness.env.weights_sha256"] == found[0]["weights_sha256"] and tags["harness.env.git_commit"]
