"""Check a command line before Hydra starts any job.

Every override (and every value of every swept override) is composed with Hydra's
compose API, and every component is built (:func:`harness.runner.prepare`), so an
unknown option, a misspelled key, an out-of-range value or an unreachable tracking
store stops the command with one line that says what is wrong and what is allowed,
before any data is generated or any model trained.
"""
from __future__ import annotations

import itertools

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from harness.build import ConfigError, one_line

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


def expand(overrides: list[str]) -> list[list[str]]:
    """Override lists covering every swept value at least once (first values elsewhere), not the full product."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for override in parsed:
        if override.is_sweep_override():
            values = list(override.sweep_string_iterator())
            choices.append([f"{override.get_key_element()}={v}" for v in values])
        else:
            choices.append([override.input_line])
    combos = [[c[0] for c in choices]]
    for i, values in enumerate(choices):
        for value in values[1:]:
            combo = [c[0] for c in choices]
            combo[i] = value
            combos.append(combo)
    return combos


def with_config_sweeps(combos: list[list[str]], overrides: list[str], sweeper: list[str]) -> list[list[str]]:
    """Add the values swept by ``hydra.sweeper.params`` (an experiment file's, or ``sweeper`` overrides)."""
    try:
        hydra_cfg = compose("config", overrides=combos[0], return_hydra_config=True).hydra
    except Exception:
        return combos  # the composition error itself is reported by the caller
    node = hydra_cfg.sweeper.get("params")
    params = {} if node is None else OmegaConf.to_container(node, resolve=False)
    for line in sweeper:  # hydra.sweeper.params.KEY=VALUES on the command line win over the file
        key, _, value = line.lstrip("+~")[len("hydra.sweeper.params."):].partition("=")
        params[key] = value
    given = {o.lstrip("+~").split("=", 1)[0] for o in overrides}
    extra = [f"{key}={value}" for key, value in params.items() if key not in given]
    return expand(combos[0] + extra) if extra else combos


def check(argv: list[str]) -> None:
    """Raise :class:`ConfigError` (one line) if the command line could not run."""
    from harness.runner import prepare  # torch-heavy; imported only when checking

    overrides, needed = split_args(argv)
    if not needed:
        return
    GlobalHydra.instance().clear()
    with initialize_config_module("conf", version_base="1.3"):
        try:
            combos = expand(overrides)
        except OverrideParseException as error:
            raise ConfigError(f"cannot parse the command line: {one_line(error)}") from None
        sweeper = [a for a in argv if a.lstrip("+~").startswith("hydra.sweeper.params.")]
        combos = with_config_sweeps(combos, overrides, sweeper)
        checked_uris: set[str] = set()
        for combo in combos:
            try:
                cfg = compose("config", overrides=combo)
            except (MissingConfigException, ConfigCompositionException, OmegaConfBaseException) as error:
                raise ConfigError(explain(error, combo)) from None
            try:
                prepare(cfg, checked_uris)
            except ConfigError:
                raise
            except OmegaConfBaseException as error:
                raise ConfigError(one_line(error)) from None
    GlobalHydra.instance().clear()
