"""The model-contrast design of BAM (Yang & Kim 2019) on spurious_shapes.

Two small CNNs differ only in how often, in training, the background agrees with the
label. At ``spurious_correlation=1.0`` with a weakened foreground the model reads the
background: it is right on foreground-on-same-class-background images and wrong on
foreground-on-other-class-background ones. At ``0.5`` it must read the shape, and the
fall is small. Across seeds 0-5 (24 px, 1500 images, width 8, 10 epochs, contrast
0.8; this test's code path) the accuracies on (same, other)-class backgrounds were:
at 1.0 always (1.00, 0.00), worst group 0.00; at 0.5 (0.98, 0.93), (0.84, 0.73),
(1.00, 0.93), (1.00, 0.86), (0.98, 0.91), (0.89, 0.74), worst group 0.19-0.69.
The margins below hold for all of them.
"""
import pytest
import torch

from harness.build import build
from harness.training import trained_model

SETTINGS = ["dataset.image_size=24", "dataset.n_train=1500", "dataset.n_test=256", "dataset.foreground_contrast=0.8",
            "model.network.width=8", "model.training.epochs=10"]


def _summary(make_cfg, tmp_path, correlation):
    cfg = make_cfg(*SETTINGS, f"dataset.spurious_correlation={correlation}", tiny=False)
    dataset = build(cfg.dataset, "dataset", seed=cfg.seed)
    trained = trained_model(cfg.model, cfg.dataset, dataset, dataset.split("train"), dataset.split("test"),
                            cfg.seed, tmp_path, torch.device("cpu"))
    return trained.summary


@pytest.mark.slow
def test_fully_spurious_training_falls_on_other_class_backgrounds_balanced_training_does_not(make_cfg, tmp_path):
    shortcut, balanced = _summary(make_cfg, tmp_path, 1.0), _summary(make_cfg, tmp_path, 0.5)
    same, other = "test_accuracy/same_class_background", "test_accuracy/other_class_background"
    assert shortcut[same] > 0.9 and shortcut[other] < 0.2          # reads the background
    assert balanced[other] > 0.6 and balanced["test_accuracy/bg_gap"] < 0.25      # reads the shape
    assert shortcut["test_accuracy/bg_gap"] - balanced["test_accuracy/bg_gap"] > 0.5
    assert shortcut["test_accuracy/bg_gap"] == pytest.approx(shortcut[same] - shortcut[other])
    # Worst-group accuracy tells the same story: some (class, background) group is always wrong under the shortcut.
    assert shortcut["worst_group_accuracy"] < 0.1 < balanced["worst_group_accuracy"]
