"""What a sweep will cost, estimated before it starts, in one line (plus warnings).

Counted in images passed through the model, from the configs and the built (cheap)
components alone; no data is generated and nothing is trained:

* training: ``epochs * n_train`` forward+backward passes per *distinct* model (the
  model cache trains each (model, dataset, seed) once; models already cached cost 0);
* attributions: ``n_samples * p`` per distinct attribution set, where ``p`` is the
  explainer's ``forward_passes_per_sample(shape)`` (:class:`methods.Explainer`);
* metrics: ``n_samples * p`` per job and metric, with ``p`` the metric's
  ``forward_passes_per_sample(shape)`` (:class:`metrics.Metric`; for deletion/insertion
  the curve length ``ceil(F / step) + 1``);
* ROAR's retrainings: one training (``epochs * n_train`` passes) per fraction t whose retrained
  model is not cached (the key is :func:`harness.training.retrained_key`, the one the run uses, so it
  depends on the method, the model and the data), plus one explanation of every training image when
  any fraction is retrained (a fully cached ROAR explains nothing).

Keys come from :mod:`harness.cache.keys`, so an entry counts as cached exactly when
the run would find it.

The sweep's jobs are the product of its swept values; the estimate composes only the
configs the pre-flight check composes anyway (each swept value once) and combines them
as if costs add up over overrides (exact for the usual sweeps; "~" marks it as an
estimate). A warning names settings that explode, such as pixel-by-pixel deletion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from harness.cache import attribution_set_key, model_key, store
from harness.models import weights_source
from harness.preflight.settings import resolve_device
from harness.training import retrained_key
from metrics import ROAR

if TYPE_CHECKING:
    from harness.runner import Components

PASSES_PER_SAMPLE_WARNING = 2_000     # a metric or explainer needing more per image is flagged
PASSES_PER_SWEEP_WARNING = 10**9


@dataclass
class JobCost:
    model_key: str
    model_cached: bool
    training: int
    attribution_key: str
    attribution: int
    metrics: int
    warnings: list[str] = field(default_factory=list)
    retrain_keys: tuple[str, ...] = ()   # ROAR's retrained models this job needs (cached or not)
    retrainings: int = 0                 # how many of them are not cached
    retraining: int = 0                  # their passes: training, and explaining the training images once


def count_jobs(value_counts: list[int]) -> int:
    return math.prod(value_counts) if value_counts else 1


def job_cost(cfg: DictConfig, parts: Components) -> JobCost:
    """The cost of one composed job; ``parts`` are its built components (:func:`harness.runner.prepare`)."""
    dataset = parts.dataset
    shape = (int(dataset.channels), int(dataset.image_size), int(dataset.image_size))
    n = math.ceil(int(cfg.eval.n_samples) / int(cfg.eval.get("shards", 1)))  # one shard's samples (eval.shards splits them)
    key = model_key(cfg.model, cfg.dataset, cfg.seed)
    cache_dir = Path(str(cfg.paths.cache)).expanduser().resolve()
    cached = weights_source(cfg.model) is not None or store(cache_dir, "models").contains(key)
    training = 0 if cached else int(cfg.model.training.epochs) * int(dataset.split_size("train") or 0)
    try:
        attr_key = attribution_set_key(cfg, key, resolve_device(str(cfg.device)))
    except OSError:
        attr_key = key + str(cfg.method)
    attr_cached = store(cache_dir, "attributions").contains(attr_key)
    explainer_per_sample = int(parts.explainer.forward_passes_per_sample(shape))
    warnings = []
    if explainer_per_sample > PASSES_PER_SAMPLE_WARNING:
        warnings.append(f"method needs {explainer_per_sample} passes per image; lower its steps/samples")
    metrics = 0
    for name, metric in parts.metrics.items():
        per_sample = int(metric.forward_passes_per_sample(shape))
        metrics += n * per_sample
        if per_sample > PASSES_PER_SAMPLE_WARNING:
            node = cfg.metric[name]
            setting = ", ".join(f"{k}={node[k]}" for k in ("granularity", "steps", "patch_size") if k in node)
            warnings.append(
                f"metric.{name} needs {per_sample} forward passes per image ({setting} on {shape[1]}x{shape[2]} images), "
                f"{n * per_sample:.2g} per job; use granularity=patch or a larger steps fraction"
            )
    retrain_keys, retrainings, retraining = roar_cost(cfg, parts, key, cache_dir, explainer_per_sample)
    return JobCost(key, cached, training, attr_key, 0 if attr_cached else n * explainer_per_sample, metrics, warnings,
                   retrain_keys, retrainings, retraining)


def roar_cost(cfg: DictConfig, parts: Components, key: str, cache_dir: Path, explainer_per_sample: int) -> tuple[tuple[str, ...], int, int]:
    """``(retrained-model keys, how many are not cached, their passes)`` of the job's ROAR metrics (``((), 0, 0)`` without one)."""
    roars = [m for m in parts.metrics.values() if isinstance(m, ROAR)]
    if not roars:
        return (), 0, 0
    models = store(cache_dir, "models")
    keys = tuple(dict.fromkeys(retrained_key(cfg, key, m.identity(t)) for m in roars for t in m.fractions))
    missing = sum(not models.contains(k) for k in keys)
    n_train = int(parts.dataset.split_size("train") or 0)
    passes = missing * int(cfg.model.training.epochs) * n_train + (n_train * explainer_per_sample if missing else 0)
    return keys, missing, passes


def estimate(base: JobCost, variations: list[list[JobCost]]) -> tuple[str, list[str]]:
    """One line for the sweep, and its warnings.

    ``variations[i]`` holds the costs of the jobs that change only override ``i`` from
    the base job (one per further value), so override ``i`` has ``len(variations[i]) + 1`` values.
    """
    counts = [len(v) + 1 for v in variations]
    jobs = count_jobs(counts)

    def distinct(attribute: str) -> int:
        return count_jobs([c for c, v in zip(counts, variations) if any(getattr(j, attribute) != getattr(base, attribute) for j in v)])

    metrics = jobs * base.metrics + sum(jobs // c * sum(j.metrics - base.metrics for j in v) for c, v in zip(counts, variations))
    everything = [base] + [j for v in variations for j in v]
    n_models, n_attributions = distinct("model_key"), distinct("attribution_key")
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    training = n_models * mean([j.training for j in everything])
    attribution = n_attributions * mean([j.attribution for j in everything])
    cached = mean([j.model_cached for j in everything])
    line = (
        f"sweep estimate: {jobs} jobs; {n_models} distinct models ({cached:.0%} cached, ~{training:.2g} training passes), "
        f"{n_attributions} distinct attribution sets (~{attribution:.2g} passes), metrics ~{metrics:.2g} forward passes"
    )
    retraining = 0.0
    if any(j.retrain_keys for j in everything):   # ROAR: one retraining per fraction x method x model, cached ones not counted
        n_sets = distinct("retrain_keys")
        retrainings, retraining = n_sets * mean([j.retrainings for j in everything]), n_sets * mean([j.retraining for j in everything])
        line += f", ROAR {retrainings:.3g} retrainings (~{retraining:.2g} passes)"
    warnings = list(dict.fromkeys(w for j in everything for w in j.warnings))
    total = training + attribution + metrics + retraining
    if total > PASSES_PER_SWEEP_WARNING:
        warnings.append(f"the sweep needs ~{total:.2g} forward passes in all; check n_samples, steps and the number of jobs")
    return line, [f"warning: {w}" for w in warnings]
