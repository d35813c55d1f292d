"""The one place where config nodes become objects.

Every method, metric, dataset and model in the harness exists because a YAML under
``conf/`` names its ``_target_``; :func:`build` instantiates such a node with
``hydra.utils.instantiate`` and turns whatever goes wrong into a
:class:`ConfigError` whose message is one line: what is wrong and what is allowed.
A node with ``seed: null`` gets the run's seed, so one ``seed`` seeds everything.
"""
from __future__ import annotations

import inspect
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A bad configuration value or combination, reported in one line before any work starts."""


def one_line(error: BaseException) -> str:
    """The innermost meaningful message of an exception chain, on one line."""
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    text = " ".join(str(error).split())
    return text or type(error).__name__


def missing_members(obj: Any, contract: type) -> list[str]:
    """The members of the ``typing.Protocol`` ``contract`` that ``obj`` lacks (empty when it conforms)."""
    members = getattr(contract, "__protocol_attrs__", None)  # Python >= 3.12
    if members is None:
        from typing import _get_protocol_attrs  # type: ignore[attr-defined]  # Python 3.10, 3.11

        members = _get_protocol_attrs(contract)
    absent = object()  # looked up statically: a lazy property (a dataset's computed mean) is not evaluated by the check
    return [name for name in sorted(members) if inspect.getattr_static(obj, name, absent) is absent]


def build(node: DictConfig, where: str, seed: int | None = None, contract: type | None = None, **kwargs: Any) -> Any:
    """Instantiate ``node`` (the config at ``where``, e.g. ``method``), filling a null ``seed``.

    With ``contract`` (a runtime-checkable ``typing.Protocol``: :class:`methods.Explainer`,
    :class:`metrics.Metric`, :class:`harness.datasets.Dataset`) the object must implement it,
    else a one-line :class:`ConfigError` names what it lacks.
    """
    if not isinstance(node, DictConfig) or "_target_" not in node:
        raise ConfigError(f"{where} has no _target_: every config under conf/ must name the class or function it builds")
    if seed is not None and "seed" in node and node.seed is None:
        kwargs["seed"] = seed
    try:
        built = instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as error:
        message = one_line(error)
        qualified = "." in message.split(" ", 1)[0]  # already names its key, e.g. "deletion.steps must ..."
        raise ConfigError(message if qualified else f"{where}: {message}") from error
    lacking = missing_members(built, contract) if contract is not None else []
    if lacking:
        raise ConfigError(f"{where}: {node._target_} does not implement the {contract.__module__}.{contract.__name__} contract; "
                          f"it lacks {', '.join(lacking)}")
    return built


def plain(node: DictConfig) -> dict:
    """A resolved, plain-Python copy of a config node (for hashing and logging)."""
    return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
