"""Module-type groups, defined once for every explainer that treats layers by kind (CAM, LRP).

As zennit's ``types.py``: a group is a tuple of ``nn.Module`` classes for
``isinstance`` checks.

* :data:`CONVOLUTION`: 1-3-D convolutions;
* :data:`LINEAR`: dense layers;
* :data:`AVERAGE_POOLING`: average and adaptive average pooling (linear in the input);
* :data:`BATCH_NORM`: every BatchNorm;
* :data:`ACTIVATION`: element-wise non-linearities;
* :data:`ELEMENTWISE`: modules that map each element on its own and keep the shape
  (activations, BatchNorm, dropout, identity): what follows a convolution inside the
  same "layer" for CAM's target-layer search.
"""
from __future__ import annotations

from torch import nn

CONVOLUTION = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
LINEAR = (nn.Linear,)
AVERAGE_POOLING = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
BATCH_NORM = (nn.modules.batchnorm._BatchNorm,)
ACTIVATION = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.ReLU6, nn.Hardswish,
              nn.Hardsigmoid, nn.Mish, nn.SELU, nn.CELU, nn.PReLU, nn.Hardtanh)
DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
ELEMENTWISE = (*ACTIVATION, *BATCH_NORM, *DROPOUT, nn.Identity)
