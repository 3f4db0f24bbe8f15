"""The baseline of benchmarks/vs_reference.py: a training loop made the way diffusers'
examples/text_to_image/train_text_to_image.py makes its own, run as a process of its own, as the
script is. It prints one line, ``REFERENCE {json}``: seconds from the process's start to the end
of its first step, and samples/s over the steps after ``--window-from``.

The choices the script makes, with its defaults wherever the benchmark sets nothing:
- imports, an Accelerator (no mixed precision), a seed; the noise scheduler (DDPM), tokenizer,
  text encoder, autoencoder and U-Net each loaded from the pipeline folder; the autoencoder and
  text encoder frozen, the U-Net in training mode;
- torch's AdamW as the script builds it (betas 0.9/0.999, weight decay 1e-2, eps 1e-8; torch
  picks its default kernel), diffusers' constant LR schedule, and ``accelerator.prepare`` of the
  U-Net, optimizer, data loader and schedule;
- an image folder with ``metadata.jsonl`` (file_name, text), read in the main process (the
  script's ``dataloader_num_workers`` is 0), shuffled: every item is opened and decoded from
  its file, resized (short side, bilinear), randomly cropped (the script crops at random unless
  told ``--center_crop``), made a tensor in [-1, 1], and its caption tokenised to the
  tokenizer's full length, every time it is drawn;
- every step, inside ``accelerator.accumulate``: the autoencoder encodes the batch and a latent
  is drawn and scaled; noise and timesteps drawn; the text encoder runs on the token ids; the
  U-Net predicts; MSE against the scheduler's target; the loss gathered for the log; backward;
  gradient clipping at 1.0; optimizer step, LR step, gradients zeroed.

Left out: the tracker (the script's default, TensorBoard, is not installed here), the
``datasets`` import (the same), checkpoints (every 500 steps by default: none in the benchmark's
runs), validation and the final save (after the timed steps). Each makes the baseline faster,
never slower. Without torchvision (not a dependency of the project) its three transforms are
written with PIL and numpy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

import numpy as np
import psutil
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from diffusers.optimization import get_scheduler
from PIL import Image
from transformers import CLIPTextModel, CLIPTokenizer


class ImageFolder(torch.utils.data.Dataset):
    """Images and captions from ``metadata.jsonl``, decoded and transformed on every access."""

    def __init__(self, folder: str, resolution: int, tokenizer):
        with open(os.path.join(folder, "metadata.jsonl"), encoding="utf-8") as handle:
            self.records = [json.loads(line) for line in handle]
        self.folder = folder
        self.resolution = resolution
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.records)

    def transform(self, image: Image.Image) -> torch.Tensor:
        side = self.resolution
        w, h = image.size
        scale = side / min(w, h)
        image = image.resize((max(side, round(w * scale)), max(side, round(h * scale))), Image.BILINEAR)
        left = random.randint(0, image.width - side)
        top = random.randint(0, image.height - side)
        array = np.asarray(image.crop((left, top, left + side, top + side)), dtype=np.float32) / 255.0
        return (torch.from_numpy(array).permute(2, 0, 1) - 0.5) / 0.5

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        with Image.open(os.path.join(self.folder, record["file_name"])) as image:
            pixels = self.transform(image.convert("RGB"))
        ids = self.tokenizer([record["text"]], max_length=self.tokenizer.model_max_length, padding="max_length",
                             truncation=True, return_tensors="pt").input_ids[0]
        return {"pixel_values": pixels, "input_ids": ids}


def collate(examples: list[dict]) -> dict:
    pixels = torch.stack([e["pixel_values"] for e in examples]).to(memory_format=torch.contiguous_format).float()
    return {"pixel_values": pixels, "input_ids": torch.stack([e["input_ids"] for e in examples])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--window-from", type=int, required=True, help="Time the steps after this one.")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    accelerator = Accelerator(gradient_accumulation_steps=1, mixed_precision="no")
    set_seed(args.seed)
    noise_scheduler = DDPMScheduler.from_pretrained(args.pipeline, subfolder="scheduler")
    tokenizer = CLIPTokenizer.from_pretrained(args.pipeline, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(args.pipeline, subfolder="text_encoder")
    vae = AutoencoderKL.from_pretrained(args.pipeline, subfolder="vae")
    unet = UNet2DConditionModel.from_pretrained(args.pipeline, subfolder="unet")
    vae.requires_grad_(False)
    text_encoder.requires_grad_(False)
    unet.train()

    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.learning_rate, betas=(0.9, 0.999), weight_decay=1e-2,
                                  eps=1e-8)
    loader = torch.utils.data.DataLoader(ImageFolder(args.images, args.resolution, tokenizer), shuffle=True,
                                         collate_fn=collate, batch_size=args.batch_size, num_workers=0)
    lr_scheduler = get_scheduler("constant", optimizer=optimizer, num_warmup_steps=0,
                                 num_training_steps=args.steps * accelerator.num_processes)
    unet, optimizer, loader, lr_scheduler = accelerator.prepare(unet, optimizer, loader, lr_scheduler)
    text_encoder.to(accelerator.device)
    vae.to(accelerator.device)

    step, first_step, window_start = 0, None, None
    while step < args.steps:
        for batch in loader:
            with accelerator.accumulate(unet):
                latents = vae.encode(batch["pixel_values"]).latent_dist.sample() * vae.config.scaling_factor
                noise = torch.randn_like(latents)
                timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],),
                                          device=latents.device).long()
                noisy = noise_scheduler.add_noise(latents, noise, timesteps)
                encoder_hidden_states = text_encoder(batch["input_ids"])[0]
                if noise_scheduler.config.prediction_type == "v_prediction":
                    target = noise_scheduler.get_velocity(latents, noise, timesteps)
                else:
                    target = noise
                prediction = unet(noisy, timesteps, encoder_hidden_states).sample
                loss = F.mse_loss(prediction.float(), target.float(), reduction="mean")
                accelerator.gather(loss.repeat(args.batch_size)).mean().item()  # the script's logged loss
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(unet.parameters(), 1.0)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
            step += 1
            if step == 1:
                first_step = time.time() - psutil.Process().create_time()
            if step == args.window_from:
                window_start = time.perf_counter()
            if step == args.steps:
                break
    seconds = time.perf_counter() - window_start
    samples = (args.steps - args.window_from) * args.batch_size * accelerator.num_processes
    print("REFERENCE " + json.dumps({"seconds_to_first_step": first_step, "samples_per_second": samples / seconds}),
          flush=True)


if __name__ == "__main__":
    main()
