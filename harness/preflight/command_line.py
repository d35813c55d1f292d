"""Check a whole command line before Hydra starts any job.

Every override (and every value of every swept override) is composed with Hydra's
compose API, and every component is built (:func:`harness.runner.prepare`, which runs
:mod:`harness.preflight.settings`), so an
unknown option, a misspelled key, an out-of-range value or an unreachable tracking
store stops the command with one line that says what is wrong and what is allowed,
before any data is generated or any model trained.
"""
from __future__ import annotations

import importlib
import warnings

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from harness.build import ConfigError, one_line

# conf/hydra/launcher/*.yaml share their names with the plugins' schemas on purpose (same keys,
# our defaults); Hydra validates them against those schemas and warns that this is deprecated.
warnings.filterwarnings("ignore", message=r"(?s).*is validated against ConfigStore schema", category=UserWarning)

# Flags that are Hydra's own and need no checking here (help, info, shell completion, config printing).
PASSTHROUGH = ("--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc", "--version", "--cfg", "-c", "--resolve", "--package", "-p")
FLAGS_WITH_VALUE = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun")


def split_args(argv: list[str]) -> tuple[list[str], bool]:
    """The user overrides in ``argv`` (Hydra's own flags and ``hydra.*`` overrides dropped), and whether to check at all."""
    overrides, skip = [], False
    it = iter(argv)
    for arg in it:
        if arg in PASSTHROUGH or arg.startswith(("--cfg=", "--package=", "--info=")):
            return [], False
        if arg in FLAGS_WITH_VALUE:
            next(it, None)
            skip = True  # a different config tree: leave the checking to Hydra
            continue
        if arg.startswith("-"):
            continue  # -m / --multirun
        key = arg.lstrip("+~").split("=", 1)[0]
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            continue
        overrides.append(arg)
    return overrides, not skip


def group_options(group: str) -> list[str]:
    loader = GlobalHydra.instance().config_loader()
    return sorted(loader.get_group_options(group))


def explain(error: BaseException, overrides: list[str]) -> str:
    """One line for a composition error: what is wrong and what is allowed."""
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, option = str(error.missing_cfg_file).rpartition("/")
        if group:
            options = group_options(group)
            return f"unknown {group} '{option}'; allowed: {', '.join(options) or '(none)'}"
    if isinstance(error, ConfigCompositionException) and "Could not override" in str(error):
        key = str(error).split("'")[1]
        parent_key, _, leaf = key.rpartition(".")
        try:
            base = compose("config", overrides=[o for o in overrides if not o.lstrip("+~").startswith(key + "=")])
            parent = OmegaConf.select(base, parent_key) if parent_key else base
        except Exception:
            parent = None
        if isinstance(parent, DictConfig):
            keys = ", ".join(k for k in parent.keys() if k != "_target_")
            return f"unknown key '{key}': {parent_key or 'the config'} has {keys} (add a new key with +{key}=...)"
        return f"unknown key '{key}'; `python -m harness --cfg job` lists the keys"
    return one_line(error)


def expand(overrides: list[str]) -> tuple[list[list[str]], list[int]]:
    """Override lists covering every swept value at least once (first values elsewhere), not the full product.

    Also returns, per list, the index of the override it varies (-1 for the first list,
    which takes every override's first value): the cost estimate combines them.
    """
    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for override in parsed:
        if override.is_sweep_override():
            values = list(override.sweep_string_iterator())
            choices.append([f"{override.get_key_element()}={v}" for v in values])
        else:
            choices.append([override.input_line])
    combos, varied = [[c[0] for c in choices]], [-1]
    for i, values in enumerate(choices):
        for value in values[1:]:
            combo = [c[0] for c in choices]
            combo[i] = value
            combos.append(combo)
            varied.append(i)
    return combos, varied


def launcher_choice(argv: list[str]) -> str:
    """The ``hydra/launcher`` option on the command line (``basic`` if none)."""
    for arg in argv:
        if arg.lstrip("+").startswith("hydra/launcher="):
            return arg.split("=", 1)[1]
    return "basic"


def check_launcher(name: str) -> None:
    """The launcher's plugin must be installed (its config names a class that imports)."""
    if name == "basic":
        return
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"(?s).*is validated against ConfigStore schema", category=UserWarning)
            node = compose("config", overrides=[f"hydra/launcher={name}"], return_hydra_config=True).hydra.launcher
    except (MissingConfigException, ConfigCompositionException):
        options = ", ".join(group_options("hydra/launcher"))
        raise ConfigError(f"unknown hydra/launcher '{name}'; allowed: {options}") from None
    target = str(node.get("_target_", ""))
    module, _, attribute = target.rpartition(".")
    try:
        getattr(importlib.import_module(module), attribute)
    except Exception:
        package = target.split(".")[1].replace("_", "-") if target.startswith("hydra_plugins.") else target
        raise ConfigError(f"hydra/launcher={name} needs its plugin: pip install {package}") from None


def with_config_sweeps(combos: list[list[str]], varied: list, overrides: list[str], sweeper: list[str]) -> tuple[list[list[str]], list]:
    """Add the values swept by ``hydra.sweeper.params`` (an experiment file's, or ``sweeper`` overrides)."""
    try:
        hydra_cfg = compose("config", overrides=combos[0], return_hydra_config=True).hydra
    except Exception:
        return combos, varied  # the composition error itself is reported by the caller
    node = hydra_cfg.sweeper.get("params")
    params = {} if node is None else OmegaConf.to_container(node, resolve=False)
    for line in sweeper:  # hydra.sweeper.params.KEY=VALUES on the command line win over the file
        key, _, value = line.lstrip("+~")[len("hydra.sweeper.params."):].partition("=")
        params[key] = value
    given = {o.lstrip("+~").split("=", 1)[0] for o in overrides}
    extra = [f"{key}={value}" for key, value in params.items() if key not in given]
    return expand(combos[0] + extra) if extra else (combos, varied)


def check(argv: list[str]) -> None:
    """Raise :class:`ConfigError` (one line) if the command line could not run; print a sweep's cost estimate."""
    from harness.runner import prepare  # torch-heavy; imported only when checking
    from harness.sweeps import cost

    overrides, needed = split_args(argv)
    if not needed:
        return
    multirun = any(a in ("-m", "--multirun") for a in argv)  # (or an experiment file's hydra.mode, see below)
    GlobalHydra.instance().clear()
    with initialize_config_module("conf", version_base="1.3"):
        try:
            combos, varied = expand(overrides)
        except OverrideParseException as error:
            raise ConfigError(f"cannot parse the command line: {one_line(error)}") from None
        sweeper = [a for a in argv if a.lstrip("+~").startswith("hydra.sweeper.params.")]
        combos, varied = with_config_sweeps(combos, varied, overrides, sweeper)
        launcher = launcher_choice(argv)
        check_launcher(launcher)
        checked_uris: set[str] = set()
        costs, notices = [], []
        for combo in combos:
            try:
                cfg = compose("config", overrides=combo)
            except (MissingConfigException, ConfigCompositionException, OmegaConfBaseException) as error:
                raise ConfigError(explain(error, combo)) from None
            try:
                if cfg.get("meta") is not None:  # experiment=metric_reliability: its meta node is checked here too
                    from harness.reliability import settings

                    settings(cfg)
                parts = prepare(cfg, checked_uris, overrides=combo)
                notices += [n for n in parts.notices if n not in notices]
                costs.append(cost.job_cost(cfg, parts))
            except ConfigError:
                raise
            except OmegaConfBaseException as error:
                raise ConfigError(one_line(error)) from None
    GlobalHydra.instance().clear()
    for notice in notices:
        print(notice, flush=True)
    if multirun or len(combos) > 1:
        variations = [[c for c, v in zip(costs, varied) if v == i] for i in range(max(varied, default=-1) + 1)]
        line, warnings = cost.estimate(costs[0], variations)
        if launcher != "basic" and any(uri.startswith("sqlite:") for uri in checked_uris):
            warnings.append(
                f"warning: hydra/launcher={launcher} runs jobs in parallel, and parallel writers to a SQLite store can fail "
                "with 'database is locked'; start a tracking server (python -m harness.tracking.server) and add tracking=server"
            )
        print("\n".join([line, *warnings]), flush=True)
    else:
        for warning in cost.estimate(costs[0], [])[1]:
            print(warning, flush=True)
