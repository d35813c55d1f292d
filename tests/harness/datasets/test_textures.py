"""Natural textures load offline from inside the scikit-image package and are seeded."""
import pytest
import torch

from harness.datasets import textures


@pytest.mark.parametrize("name", textures.NATURAL)
def test_natural_texture_ships_with_scikit_image_and_is_stretched_to_unit_range(name, monkeypatch):
    # No network: any attempt to fetch would fail loudly.
    import socket
    monkeypatch.setattr(socket, "socket", lambda *a, **k: (_ for _ in ()).throw(OSError("network used")))
    textures.natural.cache_clear()
    tex = textures.natural(name, 32)
    assert tex.shape == (128, 128)
    assert tex.min() >= 0 and tex.max() <= 1
    assert tex.std() > 0.1                          # a texture, not a flat image


@pytest.mark.parametrize("name", textures.TEXTURES)
def test_every_texture_draws_seeded_crops(name):
    which = torch.zeros(6, dtype=torch.long)
    a = textures.draw((name,), which, 24, torch.Generator().manual_seed(1))
    b = textures.draw((name,), which, 24, torch.Generator().manual_seed(1))
    c = textures.draw((name,), which, 24, torch.Generator().manual_seed(2))
    assert a.shape == (6, 1, 24, 24) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a[0], a[1])             # samples differ (crop or phase)
