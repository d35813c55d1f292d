"""The Hydra entry point: compose the config, run one benchmark job, print its table."""
from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from harness import report
from harness.runner import run


@hydra.main(version_base="1.3", config_path="pkg://conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, float]:
    hc = HydraConfig.get()
    job = str(hc.job.num) if hc.mode.name == "MULTIRUN" else ""
    outcome = run(cfg, choices=dict(hc.runtime.choices), overrides=list(hc.overrides.task), job=job)
    label = f"job {job}: " if job else ""
    accuracy = outcome.model_summary.get("test_accuracy", float("nan"))
    print(f"\n{label}{' '.join(hc.overrides.task) or 'defaults'} | model test accuracy {accuracy:.3f} | MLflow run {outcome.run_id}")
    print(report.render_summary(outcome.summary), flush=True)
    return outcome.headline()
