"""Evaluation sampling on the data plane (a local Ray): the same PNG bytes, in the same order,
as drawing in this process, and a killed actor costs a retry of its batch, never a lost or a
second image."""

import functools
import logging
import os
import signal
from pathlib import Path

import pytest

from photogenic.evaluation.prompts import Prompt
from photogenic.evaluation.sampling import ModelSampler, SamplingSettings, jobs_for, sample_jobs, sample_model
from tests.support.tiny_models import tiny_sd_pipeline

SETTINGS = SamplingSettings(num_inference_steps=3, guidance_scale=2.0, seeds_per_prompt=2, batch_size=3, device="cpu")
PROMPTS = [Prompt(f"p{i}", f"a photo of thing {i}") for i in range(5)]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(tiny_sd_pipeline(tmp_path_factory.mktemp("models") / "model", seed=3))


def _drawn(samples) -> list[tuple[str, int, int, bytes]]:
    return [(s.job.prompt.prompt_id, s.job.seed, s.job.replicate, s.png) for s in samples]


class DieOnce(ModelSampler):
    """A sampler whose first batch, anywhere, kills its own process (its marker file then exists)."""

    def __init__(self, marker: str, *args):
        super().__init__(*args)
        self.marker = Path(marker)

    def __call__(self, batch):
        if not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(batch)


def test_ray_actors_draw_the_same_bytes_in_the_same_order(model):
    import torch

    jobs = jobs_for(PROMPTS, SETTINGS)
    here = _drawn(sample_model("m", model, jobs, SETTINGS, progress=False))
    assert [(p, s) for p, s, _, _ in here] == [(j.prompt.prompt_id, j.seed) for j in jobs]  # seed_for, unchanged
    threads = torch.get_num_threads()
    try:
        # the caller's thread count, not the one Ray gives an actor of one CPU (OMP_NUM_THREADS=1):
        # with 1 and 2 threads, 2 of these 10 images differ in their bytes
        torch.set_num_threads(2)
        local = _drawn(sample_model("m", model, jobs, SETTINGS, progress=False))
        assert _drawn(sample_model("m", model, jobs, SETTINGS, progress=False, workers=2)) == local
    finally:
        torch.set_num_threads(threads)


def test_a_killed_sampling_actor_costs_a_retry_not_an_image(model, tmp_path):
    jobs = jobs_for(PROMPTS, SETTINGS)
    wanted = _drawn(sample_model("m", model, jobs, SETTINGS, progress=False))
    marker = tmp_path / "killed.pid"
    make = functools.partial(DieOnce, str(marker), "m", model, SETTINGS)
    drawn = _drawn(sample_jobs("m", jobs, SETTINGS.batch_size, make, progress=False, workers=2))
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # an actor died, not this process
    assert drawn == wanted  # every image once, in order, the same bytes


def test_gpus_a_local_ray_lacks_sample_on_the_cpu(model, caplog):
    """evaluate.gpus on a machine without them: the actor runs on the CPU with a warning, as
    every model stage's does, rather than waiting for ever for a GPU (or failing, as it did)."""
    jobs = jobs_for(PROMPTS[:2], SETTINGS)
    wanted = _drawn(sample_model("m", model, jobs, SETTINGS, progress=False))
    with caplog.at_level(logging.WARNING, logger="photogenic.dataplane.session"):
        drawn = _drawn(sample_model("m", model, jobs, SETTINGS, progress=False, gpus=1))
    assert "the models run on the CPU" in caplog.text
    assert drawn == wanted


def test_the_evaluation_samples_on_ray_when_configured(model, tmp_path):
    """evaluate.sampling.workers: the evaluation dataset holds the same images either way."""
    from photogenic.config import load_config
    from photogenic.dataset.store import Dataset
    from photogenic.evaluation.evaluate import run_evaluation
    from photogenic.evaluation.prompts import write_prompts
    from photogenic.evaluation.world_prompts import sample_world_prompts

    other = str(tiny_sd_pipeline(tmp_path / "other", seed=4))
    write_prompts(str(tmp_path / "data" / "prompts" / "eval.tsv"), sample_world_prompts(3, pool_n=200))

    def images(workers: int, output: str) -> list[tuple[str, str, int]]:
        config = load_config(None, [f"data.root={tmp_path / 'data'}", "evaluate.prompts=prompts/eval.tsv",
                                    f"evaluate.candidate={model}", f"evaluate.baseline={other}",
                                    "evaluate.sampling.num_inference_steps=2", "evaluate.sampling.batch_size=2",
                                    "evaluate.sampling.device=cpu", "evaluate.bootstrap=200", "evaluate.mlflow=false",
                                    f"evaluate.sampling.workers={workers}", f"evaluate.output={output}"])
        ref = run_evaluation(config, progress=False).ref
        table = Dataset(ref.path).read_manifest(["model", "prompt_id", "seed", "sample_id"]).to_pylist()
        return [(r["model"], r["prompt_id"], r["seed"], r["sample_id"]) for r in table]

    here = images(0, "evaluation_here")
    assert len(here) == 6 and images(2, "evaluation_on_ray") == here
