"""scripts/example_own_model.py runs (fast settings): three methods, two metrics, a saved heat-map figure."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "example_own_model.py"


@pytest.mark.slow
def test_the_example_explains_a_torchvision_model_on_the_photos_and_saves_heat_maps(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("example_own_model", SCRIPT)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "maps.png"
    example.main(["--size", "32", "--steps", "4", "--out", str(out)])
    printed = capsys.readouterr().out
    for word in ("saliency", "integrated_gradients", "gradcam", "deletion", "insertion", f"heat maps saved to {out}"):
        assert word in printed
    with Image.open(out) as figure:
        assert figure.size[0] > 100 and figure.size[1] > 100
