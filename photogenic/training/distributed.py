"""accelerate's per-process state for training: the processes a launcher starts (DDP) joined
in one group, and a fresh Accelerator for every training run in a process.

``accelerate launch --multi_gpu`` and ``torchrun`` give every process RANK, WORLD_SIZE and
LOCAL_RANK. On GPUs accelerate joins them in an NCCL group by itself. On a machine without one it
joins them only when told to use the CPU (``accelerate launch --cpu`` says so through
ACCELERATE_USE_CPU); otherwise every process trains a whole model of its own, on all the data,
and writes over the others' checkpoints and model. So processes launched on a CPU-only machine
are always joined, in a gloo group: ``torchrun --nproc_per_node 2 -m photogenic.cli step pretrain``
trains one model with both.
"""

from __future__ import annotations

import os

import torch


def launched_processes() -> int:
    """How many processes the launcher started (1 when run directly)."""
    return int(os.environ.get("WORLD_SIZE") or 1)


def join_on_cpu() -> bool:
    """Whether the processes must be told to join on the CPU (several of them, no GPU)."""
    return launched_processes() > 1 and not torch.cuda.is_available()


def is_main_process() -> bool:
    """Whether this is the process that validates, tracks, registers and reports (rank 0, or the
    only one); asking joins the process group, as accelerate's first look at the process does."""
    from accelerate import PartialState

    return PartialState(cpu=join_on_cpu()).is_main_process


def accelerator(mixed_precision: str, grad_accum: int):
    """The Accelerator of one training run.

    accelerate keeps its state once per process and refuses a second Accelerator with another
    mixed precision; a process that trains twice (the local orchestrator runs pretrain, then
    quality_tune, in one process) would fail at its second recipe if the two differ. The state is
    then started anew for the new run; the process group (PartialState) is kept.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    earlier = AcceleratorState._shared_state.get("_mixed_precision")
    if earlier is not None and earlier != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision=mixed_precision, gradient_accumulation_steps=grad_accum, cpu=join_on_cpu())
