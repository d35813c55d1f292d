"""``harness --help``: the config groups, their options and a one-line description of each, read from the config tree.

The description of an option is the first line of its YAML's header comment (the
``# @package`` line skipped, a trailing example command cut), so the help lists what
``conf/`` holds and never drifts from it. Hydra's own help follows it.
"""
from __future__ import annotations

import re
from pathlib import Path

WIDTH = 110


def conf_dir() -> Path:
    import conf

    return Path(conf.__file__).parent


def description(path: Path) -> str:
    """The first sentence of the YAML's header comment (its prose lines joined), without example commands."""
    prose: list[str] = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith("@package"):
            continue
        if not text or text.startswith(("python ", "harness ")):
            if prose:
                break
            continue
        prose.append(text.split("   ", 1)[0].strip())  # "Saliency (Simonyan et al.).   python -m harness method=saliency"
        if "   " in text:
            break
    joined = " ".join(prose)
    sentence = re.split(r"(?<!\bal)\.\s+(?=[A-Z])", joined, maxsplit=1)[0].rstrip(".") + "."
    return sentence if len(sentence) <= WIDTH else sentence[: WIDTH - 1].rstrip() + "…"


def groups(root: Path | None = None) -> dict[str, dict[str, str]]:
    """``{group: {option: description}}`` for every folder of YAMLs under ``conf/`` (``hydra/launcher`` too)."""
    root = root or conf_dir()
    found: dict[str, dict[str, str]] = {}
    for path in sorted(root.rglob("*.yaml")):
        if path.parent == root or "__pycache__" in path.parts:
            continue
        group = path.parent.relative_to(root).as_posix()
        found.setdefault(group, {})[path.stem] = description(path)
    return found


def render(root: Path | None = None) -> str:
    """The text ``harness --help`` prints before Hydra's help."""
    root = root or conf_dir()
    lines = [
        "harness: benchmark attribution methods: a model, a dataset, a method and metrics composed from config groups, logged to MLflow.",
        "",
        "usage: harness [GROUP=OPTION ...] [KEY=VALUE ...]          one run, e.g. harness method=integrated_gradients metric=[deletion]",
        "       harness -m GROUP=A,B [KEY=V1,V2 ...]                a sweep: one MLflow child run per combination",
        "       harness --cfg job                                   print the composed config (every key can be overridden)",
        "",
        f"Config groups (conf/, each option's first header line; `metric` takes a list, metric=[a,b]; defaults in {(root / 'config.yaml').name}):",
    ]
    for group, options in groups(root).items():
        lines.append(f"  {group}")
        width = max(len(o) for o in options)
        lines += [f"    {option.ljust(width)}  {text}".rstrip() for option, text in options.items()]
    lines += ["", "Shell completion: eval \"$(harness -sc install=bash)\" (zsh: install=zsh via bash completion, fish: install=fish).",
              "Hydra's own help follows.", ""]
    return "\n".join(lines)
