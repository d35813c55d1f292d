"""Every key and the resume hash follow the code: an edit to any helper module invalidates them."""
import shutil
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

import methods
from harness.cache import keys
from harness.runner import run
from harness.sweeps import finished_earlier


def test_source_hash_follows_an_edit_to_a_helper_module(tmp_path):
    copy = tmp_path / "methods"
    shutil.copytree(Path(methods.__path__[0]), copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = keys.source_hash([copy])
    assert keys.source_hash([copy]) == before
    hooks = copy / "_hooks.py"
    hooks.write_text(hooks.read_text() + "\n# a change in a helper no explainer's own file shows\n")
    assert keys.source_hash([copy]) != before


def test_code_version_covers_our_sources_and_the_library_versions():
    assert set(keys.library_versions()) == {"python", "torch", "torchvision", "numpy"}
    assert keys.code_version() == keys.code_version()  # computed once per process


def test_every_key_changes_with_the_code(make_cfg, monkeypatch):
    cfg = make_cfg()
    cpu = torch.device("cpu")
    before = (keys.split_key(cfg.dataset, 0, "test"), keys.model_key(cfg.model, cfg.dataset, 0),
              keys.attribution_key(cfg, "m", cpu), keys.config_hash(cfg))
    monkeypatch.setattr(keys, "code_version", lambda: "edited")
    after = (keys.split_key(cfg.dataset, 0, "test"), keys.model_key(cfg.model, cfg.dataset, 0),
             keys.attribution_key(cfg, "m", cpu), keys.config_hash(cfg))
    assert all(b != a for b, a in zip(before, after))


@pytest.mark.slow
def test_after_a_code_change_the_job_is_not_resumed_and_the_entries_are_recomputed(make_cfg, monkeypatch):
    cfg = make_cfg("seed=23", "metric=[deletion]", "tracking.experiment=code_change")  # a seed no other test trains
    first = run(cfg)
    assert finished_earlier(cfg).info.run_id == first.run_id
    monkeypatch.setattr(keys, "code_version", lambda: "edited")
    assert finished_earlier(cfg) is None
    second = run(cfg)
    tags = MlflowClient().get_run(second.run_id).data.tags
    assert tags["harness.model_cache"] == "trained" and tags["harness.attribution_cache"] == "computed"


def test_every_key_of_an_image_folder_follows_its_files(make_cfg, tmp_path):
    import os

    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(2):
            Image.new("L", (8, 8), 60 * i).save(tmp_path / "images" / label / f"{i}.png")
    cfg = make_cfg("dataset=image_folder", f"dataset.root={tmp_path / 'images'}", tiny=False)
    cpu = torch.device("cpu")

    def all_keys():
        return (keys.split_key(cfg.dataset, 0, "test"), keys.model_key(cfg.model, cfg.dataset, 0),
                keys.attribution_key(cfg, "m", cpu), keys.config_hash(cfg))

    seen = [all_keys()]
    assert all_keys() == seen[0]                                       # the same files: the same keys
    edited = tmp_path / "images" / "a" / "0.png"
    Image.new("L", (8, 8), 200).save(edited)
    os.utime(edited, ns=(1, 1))                                        # another content and time stamp
    seen.append(all_keys())
    Image.new("L", (8, 8), 9).save(tmp_path / "images" / "b" / "2.png")  # an image added
    seen.append(all_keys())
    (tmp_path / "images_masks").mkdir()                                # a masks folder found beside the root
    Image.new("L", (8, 8), 255).save(tmp_path / "images_masks" / "x.png")
    seen.append(all_keys())
    for before, after in zip(seen, seen[1:]):
        assert all(b != a for b, a in zip(before, after))
    plain = make_cfg(tiny=False)                                       # a generated dataset reads no files
    assert "files" not in keys.dataset_identity(plain.dataset)
