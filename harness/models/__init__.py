"""Models: the networks a ``conf/model/*.yaml`` can name, and where their weights come from.

Public names:

* networks (each a ``model.network._target_``): :class:`SmallCNN`, :class:`MLP`,
  :func:`small_vit`, :func:`torchvision_network` (ResNet/VGG, :data:`ARCHITECTURES`),
  :func:`custom_network` (a user's own class, ``model=custom model.target=mypkg.MyNet``);
* :func:`build_network`: a model config's network sized for a dataset;
* weights (:mod:`harness.models.weights`): :func:`weights_source`, :func:`check_weights`, :func:`load_published`,
  :func:`load_checkpoint`, :func:`published_file`.

Training and the model cache live in :mod:`harness.training`.
"""
from harness.models.custom import custom_network
from harness.models.mlp import MLP
from harness.models.network import build_network
from harness.models.small_cnn import SmallCNN
from harness.models.small_vit import small_vit
from harness.models.torchvision_models import ARCHITECTURES, torchvision_network
from harness.models.weights import check_weights, load_checkpoint, load_published, published_file, weights_source

__all__ = [
    "ARCHITECTURES", "MLP", "SmallCNN", "build_network", "check_weights", "custom_network", "load_checkpoint", "load_published",
    "published_file", "small_vit", "torchvision_network", "weights_source",
]
