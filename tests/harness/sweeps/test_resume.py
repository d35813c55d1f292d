"""What a sweep job is (its config hash), what it reuses, how dead runs are found, what it will cost."""
import subprocess
import sys

import pytest
import torch
from mlflow.tracking import MlflowClient

from harness import tracking
from harness.build import build
from harness.cache import attribution_key, attribution_set_key, cached_split, config_hash
from harness.preflight import check
from harness.runner import prepare, run
from harness.sweeps import cost, resume


def test_config_hash_ignores_where_results_go_and_follows_what_they_are(make_cfg):
    base = config_hash(make_cfg())
    for same in (["tracking.run_name=x"], ["paths.root=/elsewhere"], ["tracking.heatmaps=0"], ["tracking.experiment=other"],
                 ["sweep.resume=false"], ["cache.attributions=false"], ["tracking.uri=http://127.0.0.1:1"]):
        assert config_hash(make_cfg(*same)) == base, same
    for different in (["seed=1"], ["metric.deletion.steps=0.1"], ["method=integrated_gradients"], ["eval.n_samples=4"],
                      ["dataset.noise=0.1"], ["device=cpu"]):
        assert config_hash(make_cfg(*different)) != base, different


def test_attribution_key_ignores_the_metric_and_follows_everything_upstream(make_cfg):
    cpu = torch.device("cpu")
    base = make_cfg()
    key = attribution_key(base, "model0", cpu)
    assert attribution_key(make_cfg("metric=[insertion]", "metric.insertion.steps=0.2"), "model0", cpu) == key
    assert attribution_key(make_cfg("tracking.run_name=x"), "model0", cpu) == key
    assert attribution_key(base, "model1", cpu) != key  # another model (training, dataset or seed changed)
    for different in (["method=integrated_gradients"], ["eval.target=label"], ["seed=3"], ["dataset.noise=0.1"]):
        assert attribution_key(make_cfg(*different), "model0", cpu) != key, different
    # which samples and how they are batched: each stored batch adds its indices; the record of a whole set adds them
    for batching in (["eval.n_samples=4"], ["eval.batch_size=2"], ["eval.sample=first"]):
        assert attribution_key(make_cfg(*batching), "model0", cpu) == key, batching
        assert attribution_set_key(make_cfg(*batching), "model0", cpu) != attribution_set_key(base, "model0", cpu), batching


def test_jobs_differing_only_in_the_metric_reuse_the_attributions(make_cfg):
    first = run(make_cfg("seed=11", "metric=[deletion]"))
    second = run(make_cfg("seed=11", "metric=[insertion]"))
    client = MlflowClient()
    tags = [client.get_run(o.run_id).data.tags for o in (first, second)]
    assert [t["harness.attribution_cache"] for t in tags] == ["computed", "hit"]
    assert tags[0]["harness.config_hash"] != tags[1]["harness.config_hash"]
    # Changing the method upstream computes new ones.
    third = run(make_cfg("seed=11", "metric=[deletion]", "method=integrated_gradients", "method.n_steps=4"))
    assert client.get_run(third.run_id).data.tags["harness.attribution_cache"] == "computed"


def test_generated_splits_are_cached_and_identical(make_cfg, tmp_path):
    cfg = make_cfg("seed=12")
    dataset = build(cfg.dataset, "dataset", seed=cfg.seed)
    fresh = dataset.split("test")
    first, second = cached_split(cfg, dataset, "test", tmp_path), cached_split(cfg, dataset, "test", tmp_path)
    for name in ("images", "labels", "masks", "groups"):
        assert torch.equal(getattr(fresh, name), getattr(first, name)) and torch.equal(getattr(first, name), getattr(second, name))
    assert len(list((tmp_path / "datasets").glob("*.pt"))) == 1


def test_process_tokens_tell_live_from_dead_processes():
    assert resume.process_alive(resume.process_token()) is True
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    token = resume.process_token(child.pid)
    child.wait()
    assert resume.process_alive(token) is False
    assert resume.process_alive("some-other-host:1:1") is None


def test_runs_left_running_by_a_dead_process_are_marked_killed_and_do_not_count_as_finished(make_cfg):
    cfg = make_cfg("tracking.experiment=stale")
    uri = tracking.tracking_uri(cfg)
    client = MlflowClient(uri)
    experiment = tracking.experiment_id(uri, "stale", tracking.artifact_root(cfg, uri))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = resume.process_token(child.pid)
    child.wait()
    crashed = client.create_run(experiment, tags={resume.PROCESS_TAG: dead, "harness.config_hash": "h1"}).info.run_id
    alive = client.create_run(experiment, tags={resume.PROCESS_TAG: resume.process_token(), "harness.config_hash": "h1"}).info.run_id
    remote = client.create_run(experiment, tags={resume.PROCESS_TAG: "elsewhere:1:1", "harness.config_hash": "h1"}).info.run_id
    assert resume.finished_run(client, experiment, "h1") is None
    assert resume.close_stale_runs(client, experiment) == [crashed]
    statuses = {r: client.get_run(r).info.status for r in (crashed, alive, remote)}
    assert statuses == {crashed: "KILLED", alive: "RUNNING", remote: "RUNNING"}
    client.set_terminated(alive, "FINISHED")
    assert resume.finished_run(client, experiment, "h1").info.run_id == alive


def test_cost_of_a_deletion_job_is_its_curve_length_per_sample(make_cfg):
    # 16 x 16 pixels = 256 features, steps 0.05 -> 13 per step -> 20 steps -> 21 curve points per sample
    # (the clean pass that picks the class is the first point); abpc runs the opposite order too.
    cfg = make_cfg("metric=[deletion]", "metric.deletion.abpc=false", "eval.n_samples=8", "method=integrated_gradients",
                   "method.n_steps=5", "paths.cache=/nonexistent")
    job = cost.job_cost(cfg, prepare(cfg))
    assert job.metrics == 8 * 21
    both = make_cfg("metric=[deletion]", "eval.n_samples=8", "paths.cache=/nonexistent")
    assert cost.job_cost(both, prepare(both)).metrics == 8 * 42
    assert job.attribution == 8 * 5
    assert job.training == 1 * 256  # one epoch over 256 training images, not cached
    assert job.warnings == []


def test_the_cost_estimate_finds_exactly_what_a_run_cached(make_cfg):
    """The estimate and the runner share harness.cache.keys: after a run, its model and attributions count as cached."""
    cfg = make_cfg("metric=[deletion]", "metric.deletion.abpc=false", "seed=21")
    before = cost.job_cost(cfg, prepare(cfg))
    assert not before.model_cached and before.training > 0 and before.attribution == 8
    run(cfg)
    after = cost.job_cost(cfg, prepare(cfg))
    assert after.model_cached and after.training == 0 and after.attribution == 0
    assert (after.model_key, after.attribution_key) == (before.model_key, before.attribution_key)


def test_sweep_estimate_counts_jobs_distinct_models_and_warns_about_pixelwise_deletion(harness_home, capsys):
    from tests.conftest import TINY

    check(["-m", *TINY, "seed=0,1", "method=saliency,integrated_gradients", "metric=[deletion]",
           "dataset.image_size=64", "metric.deletion.steps=0.0001"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("sweep estimate: 4 jobs; 2 distinct models")
    assert "4 distinct attribution sets" in lines[0]
    # 64 x 64 = 4096 features one at a time: 4097 curve points per order, both orders (abpc) per image.
    assert any(line.startswith("warning: metric.deletion needs 8194 forward passes per image (granularity=pixel") for line in lines)
    assert len(lines) == 2


def test_sweep_job_count_is_the_product_of_the_swept_values():
    from harness.sweeps.callback import count_jobs

    assert count_jobs(["seed=0,1,2", "method=saliency,integrated_gradients", "eval.n_samples=8"]) == 6
    assert count_jobs([]) == 1
    # An experiment file's sweeper params count too, unless the command line sweeps the same key.
    assert count_jobs(["seed=0,1"], {"method": "saliency,gradcam,random"}) == 6
    assert count_jobs(["method=saliency"], {"method": "saliency,gradcam,random"}) == 1


class InterruptingExplainer:
    """Stands in for Ctrl-C arriving while the attributions are computed."""

    def __call__(self, model, inputs, targets):
        raise KeyboardInterrupt

    def forward_passes_per_sample(self, shape):
        return 1


def test_ctrl_c_mid_run_leaves_a_killed_run_not_a_finished_one(make_cfg):
    cfg = make_cfg("~method", "+method._target_=tests.harness.sweeps.test_resume.InterruptingExplainer", "seed=13")
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name(cfg.tracking.experiment).experiment_id],
                              filter_string="tags.`harness.method` = 'InterruptingExplainer'")
    assert [r.info.status for r in runs] == ["KILLED"]
    assert resume.finished_run(client, runs[0].info.experiment_id, config_hash(cfg)) is None


@pytest.mark.parametrize("override, message", [
    ("sweep.resume=maybe", "sweep.resume must be true or false; got 'maybe'"),
    ("cache.attributions=1", "cache.attributions must be true or false; got 1"),
    ("cache.lock_timeout_s=0", "cache.lock_timeout_s must be a finite number > 0; got 0"),
])
def test_bad_cache_and_sweep_settings_are_one_line_errors(override, message, harness_home):
    from harness.build import ConfigError

    with pytest.raises(ConfigError) as info:
        check([override])
    assert str(info.value) == message
