"""A user's own network, named by its import path: ``model=custom model.target=mypkg.MyNet``.

The class (or function returning an ``nn.Module``) is imported from ``target``
(``package.module.Name``, importable from the environment or, searched last, the working directory) and
called with ``kwargs``; it also receives ``in_channels``, ``num_classes`` and
``image_size`` from the dataset when its signature takes them and ``kwargs`` does not
give them. The network is checked on the dataset's input shape (one forward pass of a
zero image, no gradients) so a network that does not fit the data stops the command
in one line before any work. Weights come from ``model.weights`` as for any model (a
checkpoint path, or ``null`` to train it here with ``model.training``).
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

import torch
from torch import nn

SIZES = ("in_channels", "num_classes", "image_size")


def _import(module_name: str) -> Any:
    """Import ``module_name`` from the path, or else from the working directory, searched last (never ahead of installed packages)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        cwd = os.getcwd()
        if error.name != module_name.split(".")[0] or cwd in sys.path:
            raise
        sys.path.append(cwd)  # the console script does not put the working directory on the path; a user's mynet.py lives there
        return importlib.import_module(module_name)


def import_target(target: str) -> Any:
    """The object at ``target`` (``package.module.Name``); a one-line ``ValueError`` when it cannot be imported."""
    module_name, _, attribute = str(target).rpartition(".")
    if not module_name:
        raise ValueError(f"model.target must be a dotted import path such as mypkg.MyNet; got {target!r}")
    try:
        module = _import(module_name)
    except Exception as error:  # noqa: BLE001 - any import failure is the user's module
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"model.target: cannot import module {module_name!r} ({reason}); it must be importable from the "
                         "working directory or the environment (pip install -e your package, or set PYTHONPATH)") from None
    if not hasattr(module, attribute):
        public = sorted(n for n, v in vars(module).items() if not n.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v)))
        raise ValueError(f"model.target: module {module_name!r} has no {attribute!r}; it has {', '.join(public) or 'no classes or functions'}")
    return getattr(module, attribute)


def custom_network(target: str | None = None, kwargs: dict | None = None, in_channels: int = 3, num_classes: int = 10,
                   image_size: int = 32) -> nn.Module:
    """Import ``target``, build it with ``kwargs`` (and the dataset's sizes where it takes them), check it on the data's shape.

    Args:
        target (str): The import path of an ``nn.Module`` class or of a function returning one,
            e.g. ``mypkg.MyNet``. Required: the default null stops the run asking for it. Default: None.
        kwargs (dict, optional): Keyword arguments of ``target``
            (``+model.kwargs.width=8`` on the command line). Default: {}.
        in_channels (int, optional): Channels of the input images; filled in by the harness from
            the dataset, and passed on when ``target`` takes ``in_channels``. Default: 3.
        num_classes (int, optional): Classes of the dataset; filled in by the harness, passed on
            when ``target`` takes ``num_classes``, and checked against the network's outputs. Default: 10.
        image_size (int, optional): Side of the input images; filled in by the harness, passed on
            when ``target`` takes ``image_size``. Default: 32.

    Returns:
        nn.Module: the user's network, in eval mode.
    """
    if target is None:
        raise ValueError("model.target is required: the import path of your nn.Module, e.g. model.target=mypkg.MyNet")
    built = import_target(target)
    arguments = dict(kwargs or {})
    try:
        parameters = inspect.signature(built).parameters
    except (TypeError, ValueError):
        parameters = {}
    given = {"in_channels": in_channels, "num_classes": num_classes, "image_size": image_size}
    for name in SIZES:
        if name in parameters and name not in arguments:
            arguments[name] = given[name]
    try:
        network = built(**arguments)
    except Exception as error:  # noqa: BLE001 - the user's constructor; its message says what is wrong
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"model.target: {target}({', '.join(f'{k}={v!r}' for k, v in arguments.items())}) failed: {reason}") from None
    if not isinstance(network, nn.Module):
        raise ValueError(f"model.target: {target} returned a {type(network).__name__}, not a torch.nn.Module")
    check_shape(network, target, in_channels, num_classes, image_size)
    return network.eval()


def check_shape(network: nn.Module, target: str, channels: int, num_classes: int, image_size: int) -> None:
    """One forward pass of a zero image of the dataset's shape: the output must be ``(1, num_classes)`` logits."""
    shape = (2, channels, image_size, image_size)
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            parameter = next(network.parameters(), None)
            out = network(torch.zeros(shape, device=None if parameter is None else parameter.device))
    except Exception as error:  # noqa: BLE001 - the user's forward; its message says what is wrong
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"model.target: {target} cannot take the dataset's input shape (N, {channels}, {image_size}, {image_size}): {reason}") from None
    finally:
        network.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"model.target: {target} must return (N, {num_classes}) class scores for the dataset's {num_classes} classes; "
                         f"got {got} for an input of shape {shape}")
