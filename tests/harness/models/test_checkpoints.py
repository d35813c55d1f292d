"""A bad checkpoint (text, a pickle of objects, wrong keys, another architecture) stops pre-flight in one line."""
import pickle

import pytest
import torch

from harness.build import ConfigError, build
from harness.models import build_network


class _Anything:
    pass


def _dataset(cfg):
    return build(cfg.dataset, "dataset", seed=cfg.seed)


@pytest.mark.parametrize("kind, message", [
    ("text", "is not a PyTorch checkpoint"),
    ("pickle", "holds Python objects other than tensors"),
    ("list", "not a state dict of tensors"),
    ("wrong_keys", "does not fit harness.models.SmallCNN .*missing keys.*unexpected keys"),
    ("other_architecture", "does not fit harness.models.SmallCNN"),
])
def test_a_bad_checkpoint_is_one_line_without_pytorchs_advice(make_cfg, tmp_path, kind, message):
    path = tmp_path / "model.pt"
    if kind == "text":
        path.write_text("these are not weights\n")
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"state_dict": _Anything()}))
    elif kind == "list":
        torch.save([torch.zeros(1)], path)
    elif kind == "wrong_keys":
        torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    else:
        other = make_cfg("model=mlp")
        torch.save(build_network(other.model, _dataset(other)).state_dict(), path)
    cfg = make_cfg(f"model.weights={path}")
    with pytest.raises(ConfigError, match=message) as error:
        build_network(cfg.model, _dataset(cfg))
    assert "\n" not in str(error.value) and "weights_only=False" not in str(error.value)


def test_a_fitting_checkpoint_loads(make_cfg, tmp_path):
    cfg = make_cfg()
    dataset = _dataset(cfg)
    net = build_network(cfg.model, dataset)
    torch.save({"state_dict": net.state_dict(), "summary": {"test_accuracy": 0.5}}, tmp_path / "ok.pt")
    loaded = build_network(make_cfg(f"model.weights={tmp_path / 'ok.pt'}").model, dataset)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.state_dict().values()))
