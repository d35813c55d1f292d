"""``python -m harness.meta methods=A,B,C [overrides]``: can each selected metric be trusted on this model and data?

Runs :func:`metrics.meta_evaluation.meta_evaluate` (MetaQuantus-style noise resilience and
adversary reactivity with an interval over the perturbation draws, and the inter-metric Kendall tau between
method rankings; Hedstroem et al., TMLR 2023) for the config's model, data and metrics
(``metric=[...]`` as for ``python -m harness``) over the methods listed in ``methods=``
(at least two, each a ``conf/method`` name), and logs one MLflow run tagged
``harness.kind=meta_evaluation``: per metric ``meta/<metric>/{mc,mc_ci_low,mc_ci_high,
iac_nr,iac_ar,iec_nr,iec_ar,n}``, the tables ``meta/summary.csv`` and
``meta/agreement.csv``. ``meta.n_perturbations=K``, ``meta.minor_std=s``,
``meta.disruptive_std=s`` and ``meta.space=model|input`` set its arguments (defaults: those of
:func:`~metrics.meta_evaluation.meta_evaluate`). The trained model and data come from the
same caches as benchmark runs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import mlflow
import pandas as pd
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from harness import tracking
from harness.build import ConfigError, build
from harness.cache import SplitSource
from harness.datasets import Dataset
from harness.preflight.settings import check_needs, check_run_settings, resolve_device
from harness.seeding import seed_everything
from harness.training import TrainedModel, trained_model
from methods import Explainer
from metrics import ROAR, Metric
from metrics.meta_evaluation import MetaEvaluation, meta_evaluate

META_KEYS = ("n_perturbations", "minor_std", "disruptive_std", "space")


def parse(argv: list[str]) -> tuple[list[str], dict[str, float], list[str]]:
    """``(methods, meta arguments, the other Hydra overrides)`` from the command line."""
    methods, meta, rest = [], {}, []
    for arg in argv:
        if arg.startswith("methods="):
            methods = [m for m in arg.split("=", 1)[1].strip("[]").split(",") if m]
        elif arg.startswith("meta."):
            key, value = arg[5:].split("=", 1)
            if key not in META_KEYS:
                raise ConfigError(f"unknown key 'meta.{key}': meta has {', '.join(META_KEYS)}")
            if key == "space" and value not in ("model", "input"):
                raise ConfigError(f"meta.space must be model or input; got {value!r}")
            meta[key] = int(value) if key == "n_perturbations" else value if key == "space" else float(value)
        elif arg.startswith("method="):
            raise ConfigError("harness.meta compares several methods: use methods=A,B,... (not method=)")
        else:
            rest.append(arg)
    if len(methods) < 2:
        raise ConfigError(f"harness.meta needs at least two methods (methods=saliency,gradcam,...); got {methods or 'none'}")
    return methods, meta, rest


def configs(methods: list[str], overrides: list[str]) -> list[DictConfig]:
    """One composed config per method (the same model, data and metrics)."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("conf", version_base="1.3"):
            return [compose("config", overrides=[*overrides, f"method={m}"]) for m in methods]
    finally:
        GlobalHydra.instance().clear()


def first_samples(cfg: DictConfig, dataset: Dataset, device: torch.device) -> tuple[TrainedModel, torch.Tensor, dict]:
    """``(trained model, inputs, metric context)`` for the first ``eval.n_samples`` test images of ``cfg``.

    The splits are made or loaded only when needed, as in the runner: a cached model never reads its
    training split, and only the evaluated test images are made where the dataset makes them by index.
    """
    cache_dir = Path(str(cfg.paths.cache)).expanduser().resolve()
    train_split, test_split = (SplitSource(cfg, dataset, name, cache_dir) for name in ("train", "test"))
    trained = trained_model(cfg.model, cfg.dataset, dataset, train_split, test_split.streamed(), cfg.seed, cache_dir, device, cfg.get("cache"))
    train_split.drop()
    data = test_split.select(torch.arange(min(int(cfg.eval.n_samples), len(test_split))))
    context = {"labels": data.labels.to(device), "masks": None if data.masks is None else data.masks.to(device),
               "mean": dataset.mean.to(device), "std": dataset.std.to(device), "dataset": dataset,
               "indices": torch.arange(len(data), device=device)}
    return trained, data.images.to(device), context


def run(methods: list[str], overrides: list[str], meta: dict[str, float] | None = None, cfgs: list[DictConfig] | None = None,
        parent: str | None = None) -> tuple[str, MetaEvaluation]:
    """Meta-evaluate the config's metrics over ``methods``; returns the MLflow run id and the result.

    ``cfgs``: one composed config per method (None: composed from ``overrides``); ``parent``: the
    MLflow run to nest this one under (``harness experiment=metric_reliability``, :mod:`harness.reliability`).
    """
    cfgs = configs(methods, overrides) if cfgs is None else cfgs
    cfg = cfgs[0]
    check_run_settings(cfg)
    dataset = build(cfg.dataset, "dataset", seed=cfg.seed, contract=Dataset)
    explainers = {m: build(c.method, "method", seed=cfg.seed, contract=Explainer) for m, c in zip(methods, cfgs)}
    metrics = {name: build(node, f"metric.{name}", seed=cfg.seed, contract=Metric) for name, node in cfg.metric.items()}
    check_needs(metrics, dataset)
    for name, metric in metrics.items():
        if isinstance(metric, ROAR):   # every perturbed model x method would retrain once per fraction, and no cache key names a perturbed model
            raise ConfigError(f"metric {name} is not meta-evaluated: each of its perturbed-model evaluations would retrain the model once per "
                              f"fraction; leave {name} out of metric=[...] here (harness.evaluate(..., train=...) runs it once)")
    uri = tracking.tracking_uri(cfg)
    tracking.check_tracking(uri)
    device = resolve_device(str(cfg.device))
    seed_everything(cfg.seed)
    trained, inputs, context = first_samples(cfg, dataset, device)
    model = trained.model.eval()
    result = meta_evaluate(model, inputs, explainers, metrics, context, seed=int(cfg.seed), **(meta or {}))
    mlflow.set_tracking_uri(uri)
    experiment = tracking.experiment_id(uri, cfg.tracking.experiment, tracking.artifact_root(cfg, uri))
    tags = {"harness.kind": "meta_evaluation", "harness.methods": ",".join(methods), "harness.metrics": ",".join(metrics),
            "harness.meta_space": str((meta or {}).get("space", "model")), "harness.seed": str(cfg.seed)}
    with mlflow.start_run(experiment_id=experiment, run_name=f"meta-evaluation-{len(methods)}-methods", tags=tags,
                          parent_run_id=parent) as active:
        values = {}
        for row in result.summary.itertuples():
            for key in ("mc", "mc_ci_low", "mc_ci_high", "iac_nr", "iac_ar", "iec_nr", "iec_ar", "n", "minor_agreement"):
                values[f"meta/{row.metric}/{key}"] = float(getattr(row, key))
        tracking.log_batch(active.info.run_id, {k: v for k, v in values.items() if v == v})
        tracking.log_text_frame(result.summary, "meta/summary.csv")
        tracking.log_text_frame(result.agreement.reset_index(names="metric"), "meta/agreement.csv")
        run_id = active.info.run_id
    return run_id, result


def main(argv: list[str] | None = None) -> None:
    try:
        methods, meta, overrides = parse(sys.argv[1:] if argv is None else argv)
        run_id, result = run(methods, overrides, meta)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(result.summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print("\nKendall tau between the metrics' method rankings:")
        print(result.agreement.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"\nMLflow run {run_id}")


if __name__ == "__main__":
    main()
