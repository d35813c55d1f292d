"""CIFAR-10 and MNIST: absent files stop the run at once naming where they belong; present ones are read exactly."""
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.build import ConfigError
from harness.datasets import CIFAR10, MNIST
from harness.preflight import check


@pytest.mark.parametrize("name, folder", [("cifar10", "cifar-10-batches-py"), ("mnist", "MNIST/raw")])
def test_absent_offline_files_stop_preflight_naming_the_folder(name, folder, harness_home, tmp_path):
    with pytest.raises(ConfigError) as info:
        check([f"dataset={name}", f"dataset.root={tmp_path}"])
    message = str(info.value)
    assert message.startswith(f"dataset.root: {name} files not found under {tmp_path / folder} ") and "dataset.download=true" in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []            # nothing downloaded or created


def _fake_cifar(root, per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate(["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]):
        data = np.full((per_batch, 3072), 10 * i, dtype=np.uint8)
        data[:, 1024:2048] = 255                       # the green plane
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": [(i + j) % 10 for j in range(per_batch)]}, f)


def test_cifar10_reads_torchvisions_layout(tmp_path):
    _fake_cifar(tmp_path)
    d = CIFAR10(str(tmp_path), mean=[0, 0, 0], std=[1, 1, 1])
    train, test = d.split("train"), d.split("test")
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    assert test.labels.tolist() == [5, 6, 7, 8] and torch.allclose(test.images[:, 0], torch.tensor(50 / 255))
    assert (train.images[:, 1] == 1).all()
    sub = CIFAR10(str(tmp_path), n_train=6, n_test=2, seed=1).split("train")
    assert len(sub) == 6 and torch.equal(sub.labels, CIFAR10(str(tmp_path), n_train=6, seed=1).split("train").labels)


def _idx(path, array, magic):
    with open(path, "wb") as f:
        f.write(struct.pack(">i", magic) + b"".join(struct.pack(">i", s) for s in array.shape) + array.tobytes())


def test_mnist_reads_torchvisions_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 6), ("t10k", 3)):
        images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1) * np.ones((1, 28, 28), dtype=np.uint8) * 40
        _idx(raw / f"{prefix}-images-idx3-ubyte", images, 2051)
        _idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8), 2049)
    d = MNIST(str(tmp_path), mean=[0], std=[1])
    test = d.split("test")
    assert test.images.shape == (3, 1, 28, 28) and test.labels.tolist() == [0, 1, 2]
    assert torch.allclose(test.images[2], torch.tensor(80 / 255))
    assert d.channels == 1 and d.class_names[3] == "3"



class _Payload:
    """What a crafted batch would run on load: here, create a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_crafted_cifar_batch_is_refused_in_one_line_and_runs_nothing(tmp_path):
    _fake_cifar(tmp_path)
    marker = tmp_path / "pwned"
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": _Payload(str(marker))}, f)
    with pytest.raises(ValueError, match=r"asks to run \w+\.open.*refused") as error:
        CIFAR10(str(tmp_path))  # building reads the batches (restricted): pre-flight stops before any run exists
    assert "\n" not in str(error.value) and not marker.exists()


def test_a_crafted_cifar_batch_stops_the_command_with_exit_2_and_creates_nothing(tmp_path):
    _fake_cifar(tmp_path / "data")
    marker = tmp_path / "pwned"
    with open(tmp_path / "data" / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": _Payload(str(marker))}, f)
    root = Path(__file__).resolve().parents[3]
    env = dict(os.environ, HARNESS_HOME=str(tmp_path / "home"), PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "-m", "harness", "dataset=cifar10", f"dataset.root={tmp_path / 'data'}", "metric=[deletion]"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "refused" in done.stderr
    assert not marker.exists() and not (tmp_path / "home" / "mlflow.db").exists() and not (tmp_path / "home" / "cache").exists()


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", pickle.dumps([1, 2, 3]), pickle.dumps({"data": "x", "labels": []})])
def test_a_broken_cifar_batch_is_one_line(tmp_path, content):
    _fake_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(content)
    with pytest.raises(ValueError, match="not a (readable )?CIFAR-10 batch") as error:
        CIFAR10(str(tmp_path))
    assert "\n" not in str(error.value)
