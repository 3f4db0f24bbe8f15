"""Sampling: every prompt drawn by every model, with the same seeds, through the diffusers call.

Models are diffusers pipeline folders (``DiffusionPipeline.from_pretrained(folder)``), called as
``pipe(prompt=[...], generator=[torch.Generator per prompt], num_inference_steps=N,
guidance_scale=G, output_type="pil").images``. Image ``j`` of prompt ``i`` uses the seed
``base_seed + 1000 * i + j`` for every model, so A and B start from the same noise and differ
only by their weights.

Images are PNG-encoded and stored content-addressed: the manifest's ``sample_id`` is the sha256
of the PNG bytes, kept once in the evaluation dataset's shards; the manifest row says which
model, prompt and seed made it.

With ``workers`` (``evaluate.sampling.workers``) or GPUs (``evaluate.gpus``) the batches are
chunks on the data plane (photogenic.dataplane): each model is held by stateful Ray actors, one
per GPU or ``workers`` on the CPU, the batches are the same, and the samples come back in job
order. The PNG bytes are the ones this process would make: an actor runs torch on as many
threads as the caller does (photogenic.dataplane.pipeline says why). A killed
actor costs a retry of its batch (photogenic.dataplane.pipeline.RETRIES), never a lost or a
second image.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image

from photogenic.dataplane.pipeline import Step, map_rows
from photogenic.errors import ConfigError, DataError
from photogenic.evaluation.models import check_pipeline_folder
from photogenic.evaluation.prompts import Prompt

log = logging.getLogger(__name__)

#: config name -> diffusers scheduler class; "default" keeps the one saved with the model
SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_ancestral": "EulerAncestralDiscreteScheduler",
    "dpm_solver": "DPMSolverMultistepScheduler",
    "lms": "LMSDiscreteScheduler",
}


@dataclass(frozen=True)
class SamplingSettings:
    num_inference_steps: int
    guidance_scale: float
    scheduler: str = "default"
    seeds_per_prompt: int = 1
    base_seed: int = 0
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "float32"
    height: int | None = None
    width: int | None = None


@dataclass(frozen=True)
class Job:
    prompt: Prompt
    seed: int
    #: 0-based index of the image among the prompt's seeds
    replicate: int


@dataclass(frozen=True)
class Sample:
    model: str
    job: Job
    png: bytes
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.png).hexdigest()


def seed_for(base_seed: int, prompt_index: int, replicate: int) -> int:
    return base_seed + 1000 * prompt_index + replicate


def jobs_for(prompts: list[Prompt], settings: SamplingSettings) -> list[Job]:
    return [Job(p, seed_for(settings.base_seed, i, j), j)
            for i, p in enumerate(prompts) for j in range(settings.seeds_per_prompt)]


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"evaluate.sampling.device is {device!r} but no CUDA device is available; "
                          "set it to 'auto' or 'cpu'.")
    return device


def load_pipeline(folder: str, settings: SamplingSettings) -> Any:
    """The diffusers pipeline in ``folder``, on the configured device, with the configured scheduler."""
    import diffusers
    import torch

    # the project's own pipeline components (pixel space, MiniLM text encoder) must be importable
    # by name before diffusers reads a model_index.json that names them
    import photogenic.models  # noqa: F401

    check_pipeline_folder(folder)
    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[settings.dtype]
    try:
        pipe = diffusers.DiffusionPipeline.from_pretrained(folder, dtype=dtype)
    except (OSError, ValueError, EnvironmentError) as exc:
        raise DataError(f"The model folder {folder} cannot be loaded as a diffusers pipeline: {exc}") from None
    if settings.scheduler != "default":
        cls = getattr(diffusers, SCHEDULERS[settings.scheduler])
        pipe.scheduler = cls.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(resolve_device(settings.device))


def sample_model(name: str, folder: str, jobs: list[Job], settings: SamplingSettings,
                 progress: bool = True, workers: int = 0, gpus: int = 0) -> Iterator[Sample]:
    """Every job drawn by one model, in batches of ``settings.batch_size``, in job order: here
    (``workers`` 0 and no ``gpus``), or by Ray actors holding the model, one per GPU when
    ``gpus``, else ``workers`` of them."""
    make = functools.partial(ModelSampler, name, folder, settings)
    yield from sample_jobs(name, jobs, settings.batch_size, make, progress, workers, gpus)


def sample_jobs(name: str, jobs: list[Job], batch_size: int, make: Callable[[], Callable[[list[Job]], list[Sample]]],
                progress: bool = True, workers: int = 0, gpus: int = 0) -> Iterator[Sample]:
    """``jobs`` in batches through the sampler ``make()`` returns (see ``sample_model``): the
    data plane's ``map_rows``, every batch ``batch_size`` consecutive jobs wherever it runs."""
    batches = -(-len(jobs) // batch_size)
    # an actor without a batch would only load the model
    step = Step(name=f"sample {name}", make=make, holds_model=True, workers=min(gpus or workers, batches),
                num_gpus=1.0 if gpus else 0.0, caller_threads=True)
    # GPUs a local Ray lacks: the actors sample on the CPU, as every model stage's do
    # (dataplane.session.model_gpus); a cluster's Ray is asked as it is, its autoscaler adds them
    for _, sample in map_rows(jobs, lambda job: job, step, key=lambda job: name, batch_size=batch_size,
                              desc=f"sampling {name}", progress=progress, total=len(jobs)):
        yield sample


class ModelSampler:
    """One model, loaded once (in a Ray actor: once per actor), drawing batches of jobs."""

    def __init__(self, name: str, folder: str, settings: SamplingSettings):
        self.name, self.settings = name, settings
        self.pipe = load_pipeline(folder, settings)
        self.extra = {k: v for k, v in (("height", settings.height), ("width", settings.width)) if v}

    def __call__(self, batch: list[Job]) -> list[Sample]:
        import torch

        # one generator per prompt, on the CPU: the same seed gives the same noise on any device
        generators = [torch.Generator("cpu").manual_seed(job.seed) for job in batch]
        with torch.inference_mode():
            images = self.pipe(prompt=[job.prompt.prompt for job in batch], generator=generators,
                               num_inference_steps=self.settings.num_inference_steps,
                               guidance_scale=self.settings.guidance_scale, output_type="pil", **self.extra).images
        samples = []
        for job, image in zip(batch, images):
            image = image.convert("RGB")
            samples.append(Sample(self.name, job, encode_png(image), image.width, image.height))
        return samples


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def decode_png(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")
