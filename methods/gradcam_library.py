"""Any class activation map of pytorch-grad-cam (Gildenblat et al., ``pytorch_grad_cam``) as an explainer.

``GradCAMLibrary(name="ScoreCAM")`` builds ``pytorch_grad_cam.ScoreCAM(model, [layer],
reshape_transform)`` on each call and returns its map for ``ClassifierOutputTarget(t)``,
as a tensor (N, 1, H, W) on the inputs' device. The library's definition is kept: each
image's map is rectified, min-max scaled to [0, 1], resized (OpenCV, bilinear) to the
input size and min-max scaled again. The target layer is ``layer`` or the one :class:`methods.GradCAM` detects
(the map feeding the head; a detected map written by a functional call has no module to
hook, so ``layer`` must then be given). For transformers the tokens are laid out on the
patch grid with the class token dropped (the library's ``reshape_transform``; Ablation-CAM
then gets the library's ``AblationLayerVit``). Keyword
arguments other than the ones below are the library's: constructor ones
(``batch_size`` of Score-CAM/Ablation-CAM) go to the class, the rest to its call
(``eigen_smooth``, ``aug_smooth``). Catalogue entries: ``scorecam`` (Wang et al., CVPR-W
2020), ``xgradcam`` (Fu et al., BMVC 2020), ``layercam`` (Jiang et al., TIP 2021),
``eigencam`` (Muhammad & Yeasin, IJCNN 2020), ``hirescam`` (Draelos & Carin 2020),
``ablationcam`` (Desai & Ramaswamy, WACV 2020), ``fullgrad`` (Srinivas & Fleuret,
NeurIPS 2019).

FullGrad has no target layer (``layer`` is not used): the library sums psi(|x * grad_x f_c|) over the input's
channels and psi(|b_k * grad_{z_k} f_c|) over the channels k of every ``nn.Conv2d`` and ``nn.BatchNorm2d``
output z (a BatchNorm's bias is b - mu gamma / sqrt(var + eps)), psi = min-max scaling *per channel* then bilinear
resizing to the input, and min-max scales the sum (checked against this definition in the tests). A model where
another module adds a bias per position (``nn.Linear`` or ``nn.LayerNorm`` on tokens, ConvNeXt's channels-last
blocks, a ViT) is refused in one line, since the library would drop that bias's term. The per-layer terms psi(...) are
computed batched in torch (:func:`_batched_fullgrad`: the same min-max with its 1e-7 and bilinear half-pixel resizing
as the library's OpenCV loop over every image and channel, which took two thirds of the call; the channels are summed
before resizing, which is linear, so one map per image and layer is resized); the library's class
does the rest (hooks, bias extraction, backward pass, final scaling).

The library's NumPy work (Eigen-CAM's SVD per image, the min-max scaling) runs with as many BLAS threads as torch
has (``torch.get_num_threads()``, via threadpoolctl, which grad-cam's scikit-learn brings): OpenBLAS's own default
(every core) on the small per-image matrices was 20-100x slower than one thread on a shared CPU.

The call runs under :func:`methods.model_state.frozen` with a forked, seeded RNG, and
the library's hooks are released, every module's children and hooks and every parameter's
``.grad`` restored afterwards (also when the library raises halfway), so the model is left
as found. pytorch-grad-cam is optional: without it, building the
explainer fails in one line naming ``pip install grad-cam``.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterator

import torch
from torch import nn

from methods._autograd import check_batch
from methods._optional import require, seeded
from methods._trace import as_map
from methods.model_state import frozen
from methods.validation import check_seed

_HOOKS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
          "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks")


@functools.cache
def _controller():
    """threadpoolctl's ThreadpoolController, built once (building it scans the loaded libraries); None without it."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn, a grad-cam dependency, requires it
        return None
    return ThreadpoolController()


def _blas_threads() -> contextlib.AbstractContextManager:
    """NumPy's BLAS limited to torch's thread count for the block (no limit without threadpoolctl)."""
    controller = _controller()
    return contextlib.nullcontext() if controller is None else controller.limit(limits=torch.get_num_threads(), user_api="blas")


@contextlib.contextmanager
def _structure_kept(model: nn.Module) -> Iterator[None]:
    """Every module's children and hooks as before the block, also when the library raises halfway (Ablation-CAM
    swaps the target layer and hooks it inside its loop)."""
    children = {m: dict(m._modules) for m in model.modules()}
    hooks = {m: {d: set(getattr(m, d, {})) for d in _HOOKS} for m in model.modules()}
    try:
        yield
    finally:
        for m, kids in children.items():
            if dict(m._modules) != kids:
                m._modules.clear()
                m._modules.update(kids)
        for m, kinds in hooks.items():
            for d, keys in kinds.items():
                table = getattr(m, d, {})
                for key in set(table) - keys:
                    del table[key]


@functools.cache
def _batched_fullgrad(library_fullgrad: type) -> type:
    """pytorch-grad-cam's ``FullGrad`` with ``compute_cam_per_layer`` batched in torch (module docstring); with
    ``eigen_smooth`` the library's own. One subclass per library class."""

    def psi(term: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """|term| min-max scaled per (image, channel) as the library's ``scale_cam_image``, resized bilinearly to
        ``size`` and summed over the channels (summed first: resizing is linear, so one map per image is resized)."""
        term = term.abs().float()
        term = term - term.amin(dim=(2, 3), keepdim=True)
        term = (term / (1e-7 + term.amax(dim=(2, 3), keepdim=True))).sum(1, keepdim=True)
        if term.shape[-2:] != size:
            term = torch.nn.functional.interpolate(term, size=size, mode="bilinear", align_corners=False)
        return term[:, 0]

    class BatchedFullGrad(library_fullgrad):
        def compute_cam_per_layer(self, input_tensor, target_category, eigen_smooth):
            if eigen_smooth:
                return super().compute_cam_per_layer(input_tensor, target_category, eigen_smooth)
            size = tuple(input_tensor.shape[-2:])
            total = psi(input_tensor.grad.detach() * input_tensor.detach(), size)
            for bias, grads in zip(self.bias_data, self.activations_and_grads.gradients):
                bias = torch.as_tensor(bias, device=grads.device).view(1, -1, 1, 1)
                total = total + psi(bias * grads, size)
            return total.unsqueeze(1).cpu().numpy()

    return BatchedFullGrad


class GradCAMLibrary:
    """A ``pytorch_grad_cam`` CAM class, built on the model at each call (module docstring).

    Args:
        name (str, optional): The class in ``pytorch_grad_cam``: ``GradCAM``, ``HiResCAM``, ``ScoreCAM``,
            ``GradCAMPlusPlus``, ``AblationCAM``, ``XGradCAM``, ``EigenCAM``, ``EigenGradCAM``, ``LayerCAM``,
            ``FullGrad``, ``GradCAMElementWise``, ``KPCA_CAM``, ... Default: ``GradCAM``.
        layer (str or None, optional): Name of the target module (``model.get_submodule``); None: the layer
            :class:`methods.GradCAM` detects. Default: None.
        seed (int or None, optional): Seed of the forked RNG the call runs under; None: the run's seed (0 when
            called directly). Default: None.
        **kwargs: The library's keyword arguments: constructor ones go to the class, the rest to its call.
    """

    owner = "gradcam_library"  # the config name in messages (a catalogue entry's own)

    def __init__(self, name: str = "GradCAM", layer: str | None = None, seed: int | None = None, **kwargs) -> None:
        library = require("pytorch_grad_cam", "grad-cam", self.owner)
        base = library.base_cam.BaseCAM
        cls = getattr(library, name, None) if isinstance(name, str) else None
        if not (inspect.isclass(cls) and issubclass(cls, base)):
            names = sorted(n for n, c in vars(library).items() if inspect.isclass(c) and issubclass(c, base) and c is not base)
            raise ValueError(f"{self.owner}.name must be a CAM class of pytorch_grad_cam ({', '.join(names)}); got {name!r}")
        if layer is not None and not isinstance(layer, str):
            raise ValueError(f"{self.owner}.layer must be a module name or null (auto: the map feeding the head); got {layer!r}")
        check_seed(self.owner, seed)
        self.name, self.cls, self.layer, self.seed = name, cls, layer, seed
        self.targets = require("pytorch_grad_cam.utils.model_targets", "grad-cam", self.owner).ClassifierOutputTarget
        takes = set(inspect.signature(cls.__init__).parameters) - {"self", "model", "target_layers", "reshape_transform"}
        self.init = {k: v for k, v in kwargs.items() if k in takes}
        self.call = {k: v for k, v in kwargs.items() if k not in takes}
        allowed = set(inspect.signature(cls.__call__).parameters) - {"self", "input_tensor", "targets"}
        if set(self.call) - allowed:
            raise ValueError(f"{self.owner}.{sorted(set(self.call) - allowed)[0]} is not an argument of {name}; "
                             f"allowed: {', '.join(sorted(takes | allowed))}")

    def chosen_layer(self, model: nn.Module, inputs: torch.Tensor) -> str:
        """The name of the target layer (``layer``, or the one :class:`methods.GradCAM` detects)."""
        from methods.cam import find_target
        return self.layer if self.layer is not None else find_target(model, inputs, self.owner).name

    def _layer(self, model: nn.Module, inputs: torch.Tensor):
        from methods.cam import find_target
        if self.layer is not None:
            return model.get_submodule(self.layer), None
        target = find_target(model, inputs, self.owner)
        if " -> " in target.name:
            raise ValueError(f"{self.owner}: the detected map ({target.name}) is written by a functional call, which "
                             f"pytorch-grad-cam cannot hook; give {self.owner}.layer (a module name)")
        return model.get_submodule(target.name), target.grid

    def forward_passes_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Images per input through the model (for the sweep's cost estimate): one, and one per channel of the layer
        for Score-CAM and Ablation-CAM (not known before the model runs: counted as one)."""
        return 1

    def depends_on_batch(self) -> bool:
        """True (:class:`methods.types.DependsOnBatch`, conservative): the call runs under a generator seeded per call."""
        return True

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = check_batch(inputs, targets)
        grads = {p: p.grad for p in model.parameters()}
        try:
            with _structure_kept(model), frozen(model), seeded(self.seed, inputs.device), _blas_threads():
                if self.name == "FullGrad":  # no target layer: every nn.Conv2d / nn.BatchNorm2d bias
                    _check_fullgrad_biases(model, inputs, self.owner)
                    layers, grid = [], None
                else:
                    module, grid = self._layer(model, inputs)
                    layers = [module]
                reshape = lambda t: as_map(t, grid, self.owner) if t.dim() == 3 else t  # noqa: E731
                init = dict(self.init)
                if self.name == "AblationCAM" and grid is not None and "ablation_layer" not in init:  # tokens: the library's ViT ablation
                    init["ablation_layer"] = require("pytorch_grad_cam.ablation_layer", "grad-cam", self.owner).AblationLayerVit()
                cls = _batched_fullgrad(self.cls) if self.name == "FullGrad" else self.cls
                cam = cls(model=model, target_layers=layers, reshape_transform=reshape, **init)
                try:
                    x = inputs.detach().clone().requires_grad_(True)
                    maps = cam(input_tensor=x, targets=[self.targets(int(c)) for c in targets], **self.call)
                finally:
                    cam.activations_and_grads.release()
        finally:
            for p, g in grads.items():
                p.grad = g
        return torch.as_tensor(maps, dtype=inputs.dtype).to(inputs.device).unsqueeze(1)


def _check_fullgrad_biases(model: nn.Module, inputs: torch.Tensor, owner: str) -> None:
    """Refuse in one line when a module other than ``nn.Conv2d``/``nn.BatchNorm2d`` adds a nonzero bias per position
    (its output has more than the (N, features) dims): pytorch-grad-cam's FullGrad takes the bias-gradient maps of
    those two types only, so the map would silently miss that layer's term (a ViT's or ConvNeXt's ``nn.Linear`` and
    ``nn.LayerNorm`` on tokens or channels-last maps). A classifier's ``nn.Linear`` on (N, features) has no spatial term."""
    found: list[str] = []

    def hook(name):
        def record(module, args, output):
            if not found and isinstance(output, torch.Tensor) and output.dim() > 2:
                found.append(f"{name} ({type(module).__name__})")
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules()
               if type(m) not in (nn.Conv2d, nn.BatchNorm2d)
               and any(isinstance(getattr(m, b, None), torch.Tensor) and bool(getattr(m, b).detach().abs().sum() > 0)
                       for b in ("bias", "in_proj_bias"))]
    try:
        with torch.no_grad():
            model(inputs[:1])
    finally:
        for h in handles:
            h.remove()
    if found:
        raise ValueError(f"{owner}: {found[0]} adds a bias per position, which pytorch-grad-cam's FullGrad ignores (it takes "
                         "nn.Conv2d and nn.BatchNorm2d biases only), so the map would miss its bias-gradient term; use gradcam or integrated_gradients")


def _entry(cls_name: str, owner: str, title: str):
    """A catalogue entry: ``GradCAMLibrary`` with ``name`` fixed (its YAML lists it)."""

    def __init__(self, name: str = cls_name, **kwargs) -> None:
        GradCAMLibrary.__init__(self, name, **kwargs)

    doc = f"""{title}, through pytorch-grad-cam's ``{cls_name}`` (:class:`methods.gradcam_library.GradCAMLibrary`).

    Args:
        name (str, optional): The pytorch-grad-cam class. Default: ``{cls_name}``.
    """
    return type(cls_name, (GradCAMLibrary,), {"__init__": __init__, "__doc__": doc, "__module__": __name__, "owner": owner})


ScoreCAM = _entry("ScoreCAM", "scorecam", "Score-CAM (Wang et al. 2020): channels weighted by the score of the input masked by them")
XGradCAM = _entry("XGradCAM", "xgradcam", "XGrad-CAM (Fu et al. 2020): gradients weighted by the normalised activations")
LayerCAM = _entry("LayerCAM", "layercam", "Layer-CAM (Jiang et al. 2021): element-wise positive gradients times activations")
EigenCAM = _entry("EigenCAM", "eigencam", "Eigen-CAM (Muhammad & Yeasin 2020): the first principal component of the activations")
HiResCAM = _entry("HiResCAM", "hirescam", "HiResCAM (Draelos & Carin 2020): element-wise gradients times activations")
AblationCAM = _entry("AblationCAM", "ablationcam", "Ablation-CAM (Desai & Ramaswamy 2020): channels weighted by the score drop when ablated")
FullGrad = _entry("FullGrad", "fullgrad", "FullGrad (Srinivas & Fleuret 2019): input-gradient and bias-gradient maps of every layer")
