"""Training: tiny models in pixel and latent space and an SDXL-layout pipeline trained a few
steps; the saved folders load with DiffusionPipeline.from_pretrained and sample; noise offset,
Min-SNR and EMA checked numerically; checkpoints resume bit-exactly after SIGKILL and a damaged
checkpoint falls back to the one before it; two processes under torchrun train one model."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from photogenic.config import load_config
from photogenic.errors import ConfigError, DataError
from tests.support.training_fixtures import tiny_overrides, tiny_recipe_overrides, tiny_sdxl_pipeline, write_dataset

REPO = Path(__file__).resolve().parents[2]


def _sample(folder, **kwargs):
    from diffusers import DiffusionPipeline

    import photogenic.models  # noqa: F401  (registers PixelSpace for diffusers)

    pipe = DiffusionPipeline.from_pretrained(str(folder))
    prompts = ["a red square", "a blue circle"]
    images = pipe(prompt=prompts, generator=[torch.Generator().manual_seed(i) for i in range(2)],
                  num_inference_steps=2, guidance_scale=2.0, output_type="pil", **kwargs).images
    return pipe, images


def _registered_versions(name="photogenic-t2i"):
    from mlflow import MlflowClient

    return MlflowClient().search_model_versions(f"name='{name}'")


def test_pixel_space_pretrain_then_quality_tune(tmp_path):
    from photogenic.stages.runner import run_stage

    write_dataset(tmp_path, "ingested", n=24)
    write_dataset(tmp_path, "training_set", n=12, split=True)
    cfg = load_config(None, tiny_overrides(tmp_path, "pretrain") + tiny_overrides(tmp_path, "quality_tune", steps=2)[1:])
    pre = run_stage("pretrain", cfg, progress=False)
    assert pre.ref is None and Path(pre.model) == tmp_path / "models" / "pretrained"
    assert pre.stats["steps"] == 4 and pre.stats["validation_rows"] > 0
    assert Path(pre.reports["samples"]).is_file()
    tuned = run_stage("quality_tune", cfg, progress=False)
    # the packaged set's split decides: 2 of its 12 rows are validation rows
    assert tuned.stats["input_rows"] == 10 and tuned.stats["validation_rows"] == 2
    pipe, images = _sample(tuned.model)
    assert type(pipe).__name__ == "StableDiffusionPipeline" and type(pipe.vae).__name__ == "PixelSpace"
    assert [im.size for im in images] == [(16, 16), (16, 16)]
    # quality-tuning started from the pretrained weights, and changed them
    before, _ = _sample(pre.model)
    assert not torch.equal(next(before.unet.parameters()), next(pipe.unet.parameters()))
    versions = {v.tags["stage"]: v for v in _registered_versions()}
    assert set(versions) == {"pretrain", "quality_tune"}
    assert versions["quality_tune"].tags["training_set"] == "training_set"


def test_one_process_trains_recipes_of_different_mixed_precision_one_after_the_other(tmp_path):
    """The local orchestrator runs pretrain and quality_tune in one process; accelerate's
    per-process state must not hold the first recipe's precision against the second."""
    from accelerate.state import AcceleratorState

    from photogenic.stages.runner import run_stage

    write_dataset(tmp_path, "ingested", n=8)
    write_dataset(tmp_path, "training_set", n=8, split=True)
    cfg = load_config(None, tiny_overrides(tmp_path, "pretrain", steps=2, **{
        "training.pretrain.mixed_precision": "bf16"}) + tiny_overrides(tmp_path, "quality_tune", steps=2, **{
            "training.quality_tune.mixed_precision": "no"})[1:])
    precisions = []
    for stage in ("pretrain", "quality_tune"):
        run_stage(stage, cfg, progress=False)
        precisions.append(AcceleratorState().mixed_precision)
    assert precisions == ["bf16", "no"]


def test_latent_space_v_prediction_min_snr(tmp_path):
    from photogenic.stages.runner import run_stage

    write_dataset(tmp_path, "ingested", n=12)
    cfg = load_config(None, tiny_overrides(
        tmp_path, steps=2, **{"training.model.space": "latent", "training.model.autoencoder.latent_channels": 4,
                              "training.model.autoencoder.block_out_channels": "[8, 8]",
                              "training.model.autoencoder.norm_num_groups": 4,
                              "training.model.prediction_type": "v_prediction", "training.pretrain.snr_gamma": 5.0}))
    out = run_stage("pretrain", cfg, progress=False)
    pipe, images = _sample(out.model)
    assert type(pipe.vae).__name__ == "AutoencoderKL" and pipe.vae.config.latent_channels == 4
    assert pipe.unet.config.in_channels == 4 and pipe.unet.config.sample_size == 8
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert images[0].size == (16, 16)


def test_sdxl_layout_pipeline_fine_tunes(tmp_path):
    from photogenic.stages.runner import run_stage

    base = tiny_sdxl_pipeline(tmp_path / "sdxl")
    write_dataset(tmp_path, "ingested", n=8)
    cfg = load_config(None, tiny_overrides(tmp_path, steps=2, **{"training.model.pretrained": str(base)}))
    out = run_stage("pretrain", cfg, progress=False)
    pipe, images = _sample(out.model)
    assert type(pipe).__name__ == "StableDiffusionXLPipeline"
    assert pipe.text_encoder_2 is not None and images[0].size == (16, 16)
    original, _ = _sample(base)
    assert not torch.equal(original.unet.conv_in.weight, pipe.unet.conv_in.weight)


def test_progressive_resolution_trains_small_first_and_resumes_in_its_phase(tmp_path, monkeypatch):
    from photogenic.stages.runner import run_stage
    from photogenic.training.trainer import Trainer

    sizes = []
    original = Trainer.loss

    def recording(self, unet, batch, generator, train=True):
        if train:
            sizes.append(batch["size"])
        return original(self, unet, batch, generator, train)

    monkeypatch.setattr(Trainer, "loss", recording)
    write_dataset(tmp_path, "ingested", n=12)
    cfg = load_config(None, tiny_overrides(tmp_path, steps=4, **{"training.pretrain.low_resolution": 8,
                                                                "training.pretrain.low_resolution_share": 0.5}))
    out = run_stage("pretrain", cfg, progress=False)
    assert sizes == [8, 8, 16, 16]  # the model's own 16 px after the low-resolution steps
    _, images = _sample(out.model)
    assert images[0].size == (16, 16)

    # killed after step 2 (the checkpoint every 2 steps): the resumed run continues at full size
    checkpoints = tmp_path / "models" / "pretrained.work" / "checkpoints"
    shutil.rmtree(checkpoints / "step-00000004")
    sizes.clear()
    run_stage("pretrain", cfg, progress=False, resume=True)
    assert sizes == [16, 16]

    # a low resolution the U-Net cannot halve evenly is refused before training
    bad = load_config(None, tiny_overrides(tmp_path, steps=4, **{"training.pretrain.low_resolution": 9,
                                                                "training.pretrain.low_resolution_share": 0.5}))
    with pytest.raises(ConfigError, match="low_resolution 9 must be a multiple of 2"):
        run_stage("pretrain", bad, progress=False)

    # the phase is a share of the run, so a shorter run keeps it in proportion; the keys go together
    assert load_config(None, ["training.pretrain.max_steps=300"]).training.pretrain.low_resolution_steps == 260
    with pytest.raises(ConfigError, match="low_resolution and low_resolution_share go together"):
        load_config(None, ["training.pretrain.low_resolution=null"])
    with pytest.raises(ConfigError, match="low_resolution_share"):
        load_config(None, ["training.pretrain.low_resolution_share=1"])


def test_noise_offset_adds_one_constant_per_sample_and_channel():
    from photogenic.training.diffusion import sample_noise

    latents = torch.zeros(64, 3, 16, 16)
    noise = sample_noise(latents, 0.1, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    base = torch.randn(latents.shape, generator=g)
    offset = torch.randn((64, 3, 1, 1), generator=g)
    assert torch.allclose(noise, base + 0.1 * offset, atol=0, rtol=0)
    # and statistically: per-channel means spread by sqrt(1/HW + offset^2) instead of sqrt(1/HW)
    big = sample_noise(torch.zeros(4096, 3, 16, 16), 0.1, torch.Generator().manual_seed(1))
    spread = big.mean(dim=(2, 3)).std().item()
    assert abs(spread - (1 / 256 + 0.01) ** 0.5) < 0.005
    assert torch.equal(sample_noise(latents, 0.0, torch.Generator().manual_seed(7)),
                       torch.randn(latents.shape, generator=torch.Generator().manual_seed(7)))


def test_logit_normal_timesteps_favour_the_middle_and_uniform_ones_are_unchanged():
    import math

    from photogenic.training.diffusion import sample_timesteps

    uniform = sample_timesteps(256, 1000, torch.Generator().manual_seed(3))
    assert torch.equal(uniform, torch.randint(0, 1000, (256,), generator=torch.Generator().manual_seed(3)))

    t = sample_timesteps(50_000, 1000, torch.Generator().manual_seed(3), "logit_normal")
    assert t.min() >= 0 and t.max() <= 999 and t.dtype == torch.long
    # t/T in [0.25, 0.75) means |logit| < ln 3 for a standard normal: erf(ln 3 / sqrt 2) = 0.728
    middle = ((t >= 250) & (t < 750)).float().mean().item()
    assert abs(middle - math.erf(math.log(3) / math.sqrt(2))) < 0.01
    assert abs(t.float().median().item() - 500) < 10
    shifted = sample_timesteps(50_000, 1000, torch.Generator().manual_seed(3), "logit_normal", logit_mean=1.0)
    assert abs(shifted.float().median().item() - 1000 / (1 + math.exp(-1))) < 10
    with pytest.raises(ValueError, match="unknown timestep sampling"):
        sample_timesteps(4, 1000, torch.Generator(), "cubic")


def test_min_snr_weights():
    from diffusers import DDPMScheduler

    from photogenic.training.diffusion import loss_weights, snr

    scheduler = DDPMScheduler()
    t = torch.tensor([0, 500, 999])
    ratio = snr(scheduler, t)
    assert torch.allclose(loss_weights(scheduler, t, 5.0), torch.minimum(ratio, torch.tensor(5.0)) / ratio)
    assert loss_weights(scheduler, t, 5.0)[0] < 1 and loss_weights(scheduler, t, 5.0)[2] == 1
    assert loss_weights(scheduler, t, None) is None


def test_decoded_images_are_cached_once_within_the_budget_and_match_a_fresh_decode(tmp_path, monkeypatch):
    from photogenic.dataset.store import Dataset
    from photogenic.training.data import CaptionedImages, read_rows

    dataset = write_dataset(tmp_path, "ingested", n=6)
    rows = read_rows(dataset, "caption")
    decodes = []
    image_bytes = Dataset.image_bytes
    monkeypatch.setattr(Dataset, "image_bytes", lambda self, row: decodes.append(row["sample_id"])
                        or image_bytes(self, row))

    fresh = CaptionedImages(dataset.path, rows, 16)
    cached = CaptionedImages(dataset.path, rows, 16, cache_mb=1)
    for _ in range(3):  # epochs
        for i in range(len(rows)):
            assert torch.equal(cached[i]["pixels"], fresh[i]["pixels"])
    assert len(decodes) == 6 + 3 * 6  # the cached view decoded each image once, the other every epoch

    decodes.clear()
    two_images = 2 * 16 * 16 * 3 / 2**20  # uint8 at 16 px
    budget = CaptionedImages(dataset.path, rows, 16, cache_mb=two_images)
    for _ in range(2):
        for i in range(len(rows)):
            budget[i]
    assert len(decodes) == 6 + 4  # the first two stay; the other four are decoded again


def test_adamw_uses_the_fused_kernel_on_cpu_with_the_reference_update():
    from photogenic.training.trainer import adamw

    torch.manual_seed(0)
    start = [torch.randn(7, 5), torch.randn(5)]
    fused = [torch.nn.Parameter(t.clone()) for t in start]
    reference = [torch.nn.Parameter(t.clone()) for t in start]
    optimizer = adamw(fused, 0.01, 0.01, torch.device("cpu"))
    assert optimizer.defaults["fused"]
    baseline = torch.optim.AdamW(reference, lr=0.01, weight_decay=0.01, foreach=False)
    for _ in range(5):
        grads = [torch.randn_like(t) for t in start]
        for params, opt in ((fused, optimizer), (reference, baseline)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
    for a, b, s in zip(fused, reference, start):
        assert not torch.equal(a, s)
        assert torch.allclose(a, b, atol=1e-6)


def test_ema_is_the_exponential_average_of_the_trained_weights(tmp_path):
    """Checkpoint every step (each holds the raw weights and the EMA), then recompute the EMA
    by hand with diffusers' warm-up decay min(decay, (1 + k) / (10 + k))."""
    from photogenic.stages.runner import run_stage
    from photogenic.training.checkpoint import checkpoint_dirs, load_checkpoint

    write_dataset(tmp_path, "ingested", n=12)
    steps = 4
    cfg = load_config(None, tiny_overrides(tmp_path, steps=steps, **{
        "training.pretrain.checkpoint_every": 1, "training.pretrain.keep_checkpoints": 10,
        "training.pretrain.ema_decay": 0.2}))
    out = run_stage("pretrain", cfg, progress=False)
    states = [load_checkpoint(p) for _, p in
              checkpoint_dirs(str(tmp_path / "models" / "pretrained.work" / "checkpoints"))]
    assert len(states) == steps
    names = list(states[0]["unet"])
    shadow = None
    for k, state in enumerate(states, start=1):
        decay = 0.0 if k == 1 else min(0.2, k / (9 + k))
        raw = [state["unet"][n].float() for n in names]
        shadow = raw if shadow is None else [decay * s + (1 - decay) * r for s, r in zip(shadow, raw)]
        for mine, theirs in zip(shadow, state["ema"]["shadow_params"]):
            assert torch.allclose(mine, theirs, atol=1e-6)
    # the raw weights moved away from the average, and the saved model is the average
    assert any(not torch.allclose(s, r) for s, r in zip(shadow, raw))
    pipe, _ = _sample(out.model)
    saved = dict(pipe.unet.state_dict())
    for name, mine in zip(names, shadow):
        assert torch.allclose(saved[name].float(), mine, atol=1e-6), name


def _run_cli(project: Path, config: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "photogenic.cli", "step", "pretrain", "--quiet", "--config",
                             str(config), *args], cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _final_state(root: Path) -> dict:
    from photogenic.training.checkpoint import load_latest

    return load_latest(str(root / "models" / "pretrained.work" / "checkpoints")).state


@pytest.mark.slow  # three training processes
def test_sigkill_then_resume_reaches_the_same_weights(tmp_path):
    steps = 10
    configs = []
    for run in ("straight", "killed"):
        root = tmp_path / run
        write_dataset(root, "ingested", n=16)
        cfg = load_config(None, tiny_overrides(root, steps=steps, **{
            "training.pretrain.workers": 1, "training.pretrain.checkpoint_every": 2,
            "training.pretrain.validate_every": 100, "training.pretrain.snr_gamma": 5.0,
            "training.pretrain.noise_offset": 0.1}))
        path = tmp_path / f"{run}.yaml"
        path.write_text(yaml.safe_dump(cfg.resolved()))
        configs.append((root, path))

    (root_a, cfg_a), (root_b, cfg_b) = configs
    straight = _run_cli(tmp_path, cfg_a)
    killed = _run_cli(tmp_path, cfg_b)
    checkpoints = root_b / "models" / "pretrained.work" / "checkpoints"
    deadline = time.monotonic() + 300
    while not (checkpoints.is_dir() and any(p.name.startswith("step-") for p in checkpoints.iterdir())):
        assert killed.poll() is None, killed.stdout.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    interrupted_at = max(int(p.name.split("-")[1]) for p in checkpoints.iterdir() if p.name.startswith("step-"))
    assert interrupted_at < steps
    assert straight.wait() == 0, straight.stdout.read().decode()

    resumed = _run_cli(tmp_path, cfg_b, "--resume")
    output = resumed.communicate()[0].decode()
    assert resumed.returncode == 0, output
    a, b = _final_state(root_a), _final_state(root_b)
    assert a["progress"]["step"] == b["progress"]["step"] == steps
    for name, tensor in a["unet"].items():
        assert torch.equal(tensor, b["unet"][name]), name  # bit-exact on CPU
    for x, y in zip(a["ema"]["shadow_params"], b["ema"]["shadow_params"]):
        assert torch.equal(x, y)
    assert a["data_position"] == b["data_position"] == steps * 4


def test_two_processes_train_one_model_and_stop_early_together(tmp_path):
    write_dataset(tmp_path, "ingested", n=16)
    cfg = load_config(None, tiny_overrides(tmp_path, steps=12, **{
        "training.pretrain.batch_size": 2, "training.pretrain.validate_every": 2,
        # a learning rate too small to move any weight: validation cannot improve, so patience 1
        # stops the run at its second validation, a decision only the main process takes
        "training.pretrain.learning_rate": 1e-30, "training.pretrain.weight_decay": 0,
        "training.pretrain.early_stopping.metric": "val_loss", "training.pretrain.early_stopping.patience": 1}))
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(cfg.resolved()))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "photogenic.cli", "step", "pretrain", "--quiet", "--config", str(config)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    output = launched.stdout.decode()
    assert launched.returncode == 0, output
    assert "process 1 of 2 (DistributedType.MULTI_CPU" in output  # one gloo group, not two runs
    assert output.count("pretrain: model ") == 1  # the main process reports the model
    summary = json.loads((tmp_path / "models" / "pretrained.json").read_text())
    assert summary["processes"] == 2 and summary["stopped_early"] and summary["steps"] == 4
    # each of the 4 steps took a batch of 2 in each of the 2 processes
    assert _final_state(tmp_path)["data_position"] == 4 * 2 * 2
    assert [v.tags["stage"] for v in _registered_versions()] == ["pretrain"]  # registered once
    _, images = _sample(tmp_path / "models" / "pretrained")
    assert images[0].size == (16, 16)


def test_damaged_last_checkpoint_falls_back_to_the_one_before(tmp_path, caplog):
    from photogenic.training.checkpoint import load_latest, save_checkpoint

    folder = str(tmp_path / "checkpoints")
    for step in (2, 4, 6):
        save_checkpoint(folder, step, {"step": step, "w": torch.full((3,), float(step))}, keep=2)
    assert sorted(os.listdir(folder)) == ["step-00000004", "step-00000006"]
    state = Path(folder) / "step-00000006" / "tensors.safetensors"
    state.write_bytes(state.read_bytes()[:-10])  # truncated by a crash or a bad disk
    with caplog.at_level(logging.WARNING, logger="photogenic.training.checkpoint"):
        found = load_latest(folder)
    assert found.step == 4 and torch.equal(found.state["w"], torch.full((3,), 4.0))
    assert "step-00000006 is damaged" in caplog.text


def test_missing_or_bad_model_sources_are_config_errors(tmp_path):
    from photogenic.models import load_pipeline
    from photogenic.models.text import load_text_encoder

    with pytest.raises(ConfigError, match="training.model.pretrained"):
        load_pipeline(str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="training.model.pretrained"):
        load_pipeline("some-org/not-downloaded-model")  # HF_HUB_OFFLINE=1 in tests
    with pytest.raises(ConfigError, match="training.model.text_encoder.path"):
        load_text_encoder("clip", None, 8)


def test_missing_dataset_and_caption_column_are_clear_errors(tmp_path):
    from photogenic.stages.runner import run_stage

    cfg = load_config(None, tiny_overrides(tmp_path))
    with pytest.raises(DataError, match="training.pretrain.input"):
        run_stage("pretrain", cfg, progress=False)
    write_dataset(tmp_path, "ingested", n=4, caption_column="alt")
    with pytest.raises(DataError, match="no caption column 'caption'"):
        run_stage("pretrain", cfg, progress=False)


@pytest.mark.slow  # ZenML start-up plus two training steps
def test_zenml_training_pipeline_tracks_into_zenml_mlflow_tracker(tmp_path, monkeypatch):
    from photogenic.runtime import prepare_environment

    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # ZenML's tracker decides where the runs go
    prepare_environment(tmp_path)
    import mlflow
    from zenml.client import Client

    from pipelines.run import run_pipeline

    write_dataset(tmp_path / "data", "ingested", n=12)
    write_dataset(tmp_path / "data", "training_set", n=12, split=True)
    cfg = load_config(None, [f"data.root={tmp_path / 'data'}", "dvc.enabled=false",
                             *tiny_recipe_overrides(tmp_path / "data", steps=2)])
    summary = run_pipeline("training", cfg, progress=False)

    run = Client().get_pipeline("training").last_run
    assert run.status.value == "completed"
    assert {"pretrain", "quality_tune", "evaluate", "promote"} <= set(run.steps)
    assert "visual_appeal (technical_quality): candidate vs baseline win rate" in summary
    assert "promotion: " in summary
    stack = Client().active_stack
    assert stack.experiment_tracker is not None and stack.experiment_tracker.flavor == "mlflow"
    tuned = run.steps["quality_tune"].run_metadata
    assert tuned["steps"] == 2 and tuned["model"]["path"].endswith("models/quality_tuned")
    mlflow.set_tracking_uri(stack.experiment_tracker.get_tracking_uri())
    versions = {v.tags["stage"]: v for v in mlflow.MlflowClient().search_model_versions("name='photogenic-t2i'")}
    assert versions["quality_tune"].tags["zenml_run_id"] == str(run.id)
    assert versions["quality_tune"].run_id == tuned["mlflow_run_id"]
    logged = mlflow.MlflowClient().get_run(tuned["mlflow_run_id"])
    assert "loss" in logged.data.metrics and logged.data.params["stage"] == "quality_tune"
