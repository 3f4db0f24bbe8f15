"""Does the CPU's instruction set change what the demo trains? The same pretraining, on the same
machine, with torch's kernels held to AVX2 and left to the best the CPU has.

Two fresh clones on one machine produce bit-identical models; another machine produced another
headline from the same commit. torch picks its vectorised kernels (ATen's ``ATEN_CPU_CAPABILITY``,
oneDNN's convolutions, MKL's matrix products) by the instruction sets the CPU reports: AVX-512
where there is one, else AVX2. Vectors of another width add floats in another order, so the
same step gives other low bits, and training carries them on. This runs the demo's pretraining
recipe (its 16 px phase, one torch thread, no DataLoader worker, seed 0) three times, each in a
process of its own: twice with the default kernels (the control: it must give the same weights
bit for bit) and once held to AVX2, and prints how far the weights end up apart.

    python benchmarks/cpu_isa.py [--quick] [--steps N]

On a CPU without AVX-512 both settings are AVX2 and the two weight sets agree; the run says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import OUT, ingested_pool, run_benchmark  # noqa: E402

#: the environment that holds every kernel library torch uses on a CPU to AVX2
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
KERNEL_VARIABLES = tuple(AVX2)


def train(steps: int, out: Path) -> None:
    """One pretraining run, its weights saved to ``out`` (runs in the child process)."""
    import torch
    from safetensors.torch import save_file

    from photogenic.config import load_config
    from photogenic.models import build_pipeline
    from photogenic.training.data import read_rows, split_rows
    from photogenic.training.tracking import NullTracker
    from photogenic.training.trainer import Trainer, seed_everything

    dataset = ingested_pool(200)
    cfg = load_config(REPO / "configs" / "default.yaml", [
        "training.model.resolution=16", "training.pretrain.low_resolution=null",
        "training.pretrain.low_resolution_share=0", "training.pretrain.validate_every=100000",
        "training.pretrain.checkpoint_every=100000", "training.pretrain.validation_prompts=[a cat]",
        "training.pretrain.sample_steps=1", "training.pretrain.validation_batches=1",
        "training.pretrain.workers=0", "training.pretrain.threads=1", f"training.pretrain.max_steps={steps}"])
    recipe = cfg.training.pretrain
    rows, validation = split_rows(read_rows(dataset, recipe.caption_column), recipe.validation_fraction)
    seed_everything(0)
    pipe = build_pipeline(cfg.training.model)
    Trainer(recipe, pipe, dataset.path, rows, validation, str(out.with_suffix("")), resolution=16,
            tracker=NullTracker(), progress=False).train()
    save_file({k: v.detach().contiguous() for k, v in pipe.unet.state_dict().items()}, str(out))
    print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability()}), flush=True)


def run(steps: int, out: Path, held_to_avx2: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARIABLES}
    if held_to_avx2:
        env.update(AVX2)
    done = subprocess.run([sys.executable, __file__, "--child", str(out), "--steps", str(steps)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["capability"]


def apart(a: Path, b: Path) -> tuple[float, float]:
    """The largest absolute difference of any weight, and the share of weights that differ."""
    from safetensors.torch import load_file

    x, y = load_file(str(a)), load_file(str(b))
    largest, differ, total = 0.0, 0, 0
    for name in x:
        d = (x[name].double() - y[name].double()).abs()
        largest = max(largest, float(d.max()))
        differ += int((d > 0).sum())
        total += d.numel()
    return largest, differ / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 steps instead of 400")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = args.steps or (100 if args.quick else 400)
    if args.child:
        train(steps, args.child)
        return
    folder = OUT / "cpu-isa"
    folder.mkdir(parents=True, exist_ok=True)
    ingested_pool(200)  # made once, before the runs
    first = run(steps, folder / "default-1.safetensors", False)
    run(steps, folder / "default-2.safetensors", False)
    held = run(steps, folder / "avx2.safetensors", True)
    print(f"{steps} pretraining steps at 16 px on one thread: kernels {first} by default, {held} when held",
          flush=True)
    control, control_share = apart(folder / "default-1.safetensors", folder / "default-2.safetensors")
    largest, share = apart(folder / "default-1.safetensors", folder / "avx2.safetensors")
    print(f"control (default twice): largest weight difference {control:.3g}, {control_share:.1%} of weights differ",
          flush=True)
    print(f"{first} against {held}: largest weight difference {largest:.3g}, {share:.1%} of weights differ",
          flush=True)
    print(f"RESULT isa_control_weight_difference={control:.3g}", flush=True)
    print(f"RESULT isa_weight_difference={largest:.3g}", flush=True)
    if first == held:
        print("This CPU has no wider kernels than AVX2: both runs used the same ones.", flush=True)


if __name__ == "__main__":
    run_benchmark(main)
