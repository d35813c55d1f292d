"""Attribution methods ("explainers"): what every ``conf/method/*.yaml`` names. Depends on nothing of the harness.

Public names:

* the contract: :class:`Explainer` and the optional :class:`HasBaseline`, :class:`HasTargetLayer`, :class:`PerSampleSeeded`,
  :class:`UsesTrainingImages` (:mod:`methods.types`; :func:`explain_samples` calls an explainer with the samples' ids where it takes them);
* gradients: :class:`Gradient`, :class:`Saliency`, :class:`Sensitivity`, :class:`GradientXInput`,
  :class:`IntegratedGradients`, :class:`ExpectedGradients`, :class:`SmoothGrad`, :class:`GuidedBackprop`, :class:`Deconvnet`;
* class activation maps: :class:`CAM`, :class:`GradCAM`, :class:`GradCAMpp`, :class:`TokenGradCAM`;
* relevance propagation: :class:`LRP` (:mod:`methods.lrp`: rules, composites, canonizers);
* perturbation: :class:`Occlusion`, :class:`RISE`, :class:`KernelSHAP`, :class:`LIME`;
* attention (ViTs): :class:`RawAttention`, :class:`AttentionRollout`, :class:`TransformerAttribution`;
* control maps: :class:`Random`, :class:`Sobel`, :class:`Constant`;
* adapters to other libraries (optional dependencies, imported when built): :mod:`methods.captum_adapter`,
  :mod:`methods.gradcam_library`, :mod:`methods.zennit_adapter`.

Helpers the metrics share: :mod:`methods.validation` (argument checks), :mod:`methods.randomness` (per-sample random numbers), :mod:`methods.model_state`
(``untouched``/``frozen``), :mod:`methods.layer_types` (module-type groups). Modules whose
names start with ``_`` are private.
"""
from methods.attention import AttentionRollout, RawAttention, TransformerAttribution
from methods.cam import CAM, GradCAM, GradCAMpp, TokenGradCAM
from methods.controls import Constant, Random, Sobel
from methods.expected_gradients import ExpectedGradients
from methods.gradient import Gradient, GradientXInput, Sensitivity
from methods.guided_backprop import Deconvnet, GuidedBackprop
from methods.integrated_gradients import IntegratedGradients
from methods.kernel_shap import KernelSHAP
from methods.lime import LIME
from methods.lrp import LRP
from methods.occlusion import Occlusion
from methods.rise import RISE
from methods.saliency import Saliency
from methods.smoothgrad import SmoothGrad
from methods.types import DependsOnBatch, Explainer, HasBaseline, HasTargetLayer, PerSampleSeeded, UsesTrainingImages, explain_samples

__all__ = [
    "CAM", "LIME", "LRP", "RISE", "Deconvnet", "ExpectedGradients", "Explainer", "GradCAM", "GradCAMpp", "Gradient", "GradientXInput",
    "GuidedBackprop", "HasBaseline", "HasTargetLayer", "IntegratedGradients", "KernelSHAP", "Occlusion", "Random", "Saliency",
    "Sensitivity", "SmoothGrad", "Sobel", "TokenGradCAM", "AttentionRollout", "Constant", "RawAttention", "TransformerAttribution",
    "DependsOnBatch", "PerSampleSeeded", "UsesTrainingImages", "explain_samples",
]
