"""Every model config builds for the dataset's channels, classes and size; weights come from where the config says."""
from pathlib import Path

import pytest
import torch

import conf
from harness.build import ConfigError
from harness.cache import model_key
from harness.models import build_network, published_file, torchvision_network
from harness.preflight import check
from harness.training import trained_model

MODELS = sorted(p.stem for p in (Path(conf.__file__).parent / "model").glob("*.yaml"))


class FakeData:
    def __init__(self, channels=3, classes=5, size=32):
        self.channels, self.num_classes, self.image_size = channels, classes, size


def test_the_model_registry_holds_the_issue_models():
    assert {"small_cnn", "mlp", "small_vit", "resnet18", "resnet50", "vgg11", "vgg16_bn"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("channels, size", [(3, 32), (1, 32)])
def test_model_builds_for_the_data_and_gives_one_score_per_class(name, channels, size, make_cfg):
    cfg = make_cfg(f"model={name}", *(["model.target=harness.models.SmallCNN"] if name == "custom" else []))  # custom: any importable class
    model = build_network(cfg.model, FakeData(channels, 5, size)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, 5)


def test_small_vit_is_torchvisions_vision_transformer(make_cfg):
    from torchvision.models import VisionTransformer
    model = build_network(make_cfg("model=small_vit").model, FakeData(3, 4, 32))
    assert isinstance(model, VisionTransformer) and model.patch_size == 4 and len(model.encoder.layers) == 4


@pytest.mark.parametrize("overrides, message", [
    (["model=small_vit", "model.network.patch_size=5"], "model.network.patch_size must divide the image size 16; got 5"),
    (["model=resnet18", "model.network.architecture=resnet19"], "model.network.architecture must be one of resnet18, resnet50, vgg11, vgg16_bn; "
                                                                "got 'resnet19'"),
    (["model=vgg11"], "model.network: vgg11 needs images of at least 32 pixels (five 2x2 max-pools); the dataset's are 16"),
    (["model=mlp", "model.network.hidden=[]"], "model.network.hidden must list one or more positive layer widths"),
    (["model.weights=DEFAULT"], "model.weights=DEFAULT: only torchvision networks (resnet18, resnet50, vgg11, vgg16_bn) have published weights; "
                                "harness.models.SmallCNN has none"),
    (["model.weights=/nonexistent/model.pt"], "model.weights: no checkpoint file at /nonexistent/model.pt"),
    (["model.training.optimizer=rmsprop"], "model.training.optimizer must be one of adam, adamw, sgd; got 'rmsprop'"),
    (["model.training.augmentation.max_shift=-1"], "model.training.augmentation.max_shift must be an integer >= 0; got -1"),
])
def test_bad_model_settings_stop_in_one_line(overrides, message, harness_home):
    with pytest.raises(ConfigError) as info:
        check(["dataset.image_size=16", *overrides])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_default_weights_absent_offline_stop_at_once_naming_the_file(harness_home, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert published_file("resnet18") == expected
    with pytest.raises(ConfigError) as info:
        check(["model=resnet18", "model.weights=DEFAULT"])
    assert f"expected {expected}" in str(info.value) and "\n" not in str(info.value)
    assert not expected.exists()                    # nothing was downloaded


def _publish_fake(tmp_path, monkeypatch, architecture="resnet18"):
    """Put a seeded 1000-class state dict where torchvision keeps the published weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(123)
    state = torchvision_network(architecture, 3, 1000).state_dict()
    path = published_file(architecture)
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return state


def _trained(cfg, tmp_path):
    from harness.build import build
    dataset = build(cfg.dataset, "dataset", seed=cfg.seed)
    train, test = dataset.split("train"), dataset.split("test")
    return trained_model(cfg.model, cfg.dataset, dataset, train, test, cfg.seed, tmp_path / "cache", torch.device("cpu"))


def test_default_weights_with_an_imagenet_head_are_used_as_published(make_cfg, tmp_path, monkeypatch):
    state = _publish_fake(tmp_path, monkeypatch)
    cfg = make_cfg("model=resnet18", "model.weights=DEFAULT", "dataset=photos", "dataset.image_size=32", tiny=False)
    got = _trained(cfg, tmp_path)
    assert got.cached and got.key == model_key(cfg.model, cfg.dataset, cfg.seed)   # the one definition of a model's key
    for k, v in got.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert not (tmp_path / "cache").exists()        # nothing trained, nothing cached


def test_default_weights_on_other_classes_fine_tune_from_the_published_trunk(make_cfg, tmp_path, monkeypatch):
    state = _publish_fake(tmp_path, monkeypatch)
    cfg = make_cfg("model=resnet18", "model.weights=DEFAULT", "model.training.epochs=0")
    got = _trained(cfg, tmp_path)
    own = got.model.state_dict()
    assert own["fc.weight"].shape == (4, 512)       # a fresh head for the dataset's 4 classes
    assert all(torch.equal(own[k], state[k]) for k in own if not k.startswith("fc."))
    assert not got.cached and _trained(cfg, tmp_path).cached


def test_checkpoint_path_loads_exactly_those_weights(make_cfg, tmp_path):
    cfg = make_cfg()
    torch.manual_seed(7)
    saved = build_network(cfg.model, FakeData(3, 4, 16)).state_dict()
    torch.save(saved, tmp_path / "model.pt")
    got = _trained(make_cfg(f"model.weights={tmp_path / 'model.pt'}"), tmp_path)
    assert all(torch.equal(v, saved[k]) for k, v in got.model.state_dict().items())
    assert "test_accuracy" in got.summary


def test_download_true_defers_to_torchvision_and_preflight_fetches_nothing(harness_home, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    check(["model=resnet18", "model.weights=DEFAULT", "model.download=true"])   # allowed: no error, and no download yet
    assert not (tmp_path / "torch").exists()
