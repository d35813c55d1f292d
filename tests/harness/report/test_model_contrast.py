"""harness.report.contrast on constructed tables whose contrast is known by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.report import contrast
from harness.report.leaderboard import model_header
from harness.report.load import Collection

KEY = contrast.KEY
LEVELS = ("0.5", "0.75", "1.0")
SEEDS = (0, 1, 2)
SAMPLES = 6


def collection(share: dict, bg_gap: dict, worst: dict) -> Collection:
    """Scores ``share[method](level, seed, sample)`` for every method, level, seed and sample; models by level."""
    rows, runs = [], []
    for level in LEVELS:
        for seed in SEEDS:
            for method, f in share.items():
                run = f"{method}-{level}-{seed}"
                runs.append({"run": run, "method": method, "model": "small_cnn", "dataset": "spurious_shapes", "seed": seed,
                             KEY: level, "bg_gap": bg_gap[level], "worst_group_accuracy": worst[level], "test_accuracy": 0.9,
                             "n_classes": 4, "n_test": 128})
                for sample in range(SAMPLES):
                    rows.append({"run": run, "method": method, "model": "small_cnn", "dataset": "spurious_shapes", "seed": seed,
                                 KEY: level, "sample": sample, "metric": contrast.METRIC, "score": f(float(level), seed, sample)})
    scores = pd.DataFrame(rows)
    return Collection("test", "sweep", "", pd.DataFrame(runs), scores, [KEY], {contrast.METRIC: "lower"}, {}, pd.DataFrame())


GAP = {"0.5": 0.0, "0.75": 0.3, "1.0": 0.9}
WORST = {"0.5": 0.9, "0.75": 0.5, "1.0": 0.0}


def test_contrast_is_the_mean_paired_difference_and_flags_the_method_that_does_not_move():
    share = {
        "faithful": lambda c, s, i: -0.8 + 3.2 * (c - 0.5) + 0.01 * i,     # -0.8 at 0.5, +0.8 at 1.0: contrast 1.6
        "flat": lambda c, s, i: -0.7 + 0.01 * i + 0.001 * s,                  # does not move: contrast 0
        "random": lambda c, s, i: 0.02 * ((i + s) % 3 - 1),                   # control, flat
    }
    table, blocks = contrast.model_contrast(collection(share, GAP, WORST), n_resamples=200)
    by = table.set_index("method")
    assert (by["low"] == 0.5).all() and (by["high"] == 1.0).all()
    assert by.loc["faithful", "contrast"] == pytest.approx(1.6)
    assert by.loc["faithful", "ci_low"] == pytest.approx(1.6) and by.loc["faithful", "ci_high"] == pytest.approx(1.6)
    assert by.loc["flat", "contrast"] == pytest.approx(0.0, abs=1e-12)
    assert by.loc["faithful", "n"] == len(SEEDS) * SAMPLES
    assert by.loc["faithful", "gap_difference"] == pytest.approx(0.9)
    # the blocks' means rise with the level exactly as the BG-gap does (the same ties): tau-b = 1 and -1
    assert by.loc["faithful", "tau_bg_gap"] == pytest.approx(1.0) and by.loc["faithful", "tau_worst_group"] == pytest.approx(-1.0)
    assert list(table["method"][:1]) == ["faithful"] and by.loc["faithful", "rank"] == 1
    assert not by.loc["faithful", "flagged"] and by.loc["flat", "flagged"] and not by.loc["random", "flagged"]
    assert "fails to show the shortcut" in by.loc["flat", "verdict"]
    assert contrast.warnings_of(table) == [f"model contrast: flat {by.loc['flat', 'verdict']}"]
    assert set(blocks["level"]) == {0.5, 0.75, 1.0} and len(blocks) == len(share) * len(LEVELS) * len(SEEDS)
    text = contrast.markdown(table, blocks)
    assert "| 1 | faithful | +1.600 [+1.600, +1.600] | 18 |" in text and "**fails to show the shortcut" in text


def test_pairs_only_samples_scored_under_both_models_and_nothing_is_flagged_when_the_models_agree():
    share = {"faithful": lambda c, s, i: np.nan if (c == 1.0 and i < 2) else c + 0.1 * i,
             "random": lambda c, s, i: 0.0}
    flat_gap = {"0.5": 0.1, "0.75": 0.1, "1.0": 0.2}
    table, _ = contrast.model_contrast(collection(share, flat_gap, WORST), n_resamples=200)
    by = table.set_index("method")
    assert by.loc["faithful", "n"] == len(SEEDS) * (SAMPLES - 2)     # the NaN samples leave their pair out
    assert by.loc["faithful", "contrast"] == pytest.approx(0.5)
    assert not table["flagged"].any() and "rely alike" in by.loc["faithful", "verdict"]


def test_a_control_that_moves_is_named_and_no_sweep_gives_no_section():
    share = {"gradient": lambda c, s, i: 2 * c + 0.01 * i, "random": lambda c, s, i: c + 0.01 * ((i * 7 + s) % 5)}
    data = collection(share, GAP, WORST)
    table, _ = contrast.model_contrast(data, n_resamples=200)
    assert table.set_index("method").loc["random", "flagged"]
    assert contrast.model_contrast(Collection("t", "sweep", "", data.runs, data.scores, [], {}, {}, pd.DataFrame())) is None


def test_the_report_header_has_one_row_per_swept_correlation():
    header = model_header(collection({"random": lambda c, s, i: 0.0}, GAP, WORST), [])
    assert list(header["dataset"]) == [f"spurious_shapes ({KEY}={level})" for level in LEVELS]
    assert list(header["bg_gap"]) == [GAP[level] for level in LEVELS] and (header["seeds"] == len(SEEDS)).all()
