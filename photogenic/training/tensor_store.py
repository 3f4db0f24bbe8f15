"""Named tensors kept in safetensors shards: the store behind the trainer's on-disk caches
(latents, text embeddings; ``photogenic.training.caches``).

A store is a folder of shards ``part-<uuid>.safetensors``, each written once, atomically
(temporary name, then rename), and never rewritten. Opening a store reads every shard; entries
added afterwards gather in memory and ``flush`` writes them as one new shard. Every writer makes
shards of its own, so the processes of a DDP run, or two runs on the same dataset, never touch
each other's files; a name found in two shards holds the same value computed twice, and the one
read last is kept. A shard that cannot be read (cut short by a full disk, say) is skipped with a
warning: its entries are computed again and written anew.

Everything goes through fsspec, like the datasets the store sits beside. A store is held in
memory whole; the caches that use it say what that costs.
"""

from __future__ import annotations

import logging
import uuid

import torch

from photogenic.dataset.atomic import filesystem, write_bytes
from photogenic.paths import join

log = logging.getLogger(__name__)

SUFFIX = ".safetensors"


class TensorStore:
    def __init__(self, folder: str, metadata: dict[str, str] | None = None):
        self.folder = folder
        #: written into every shard this store writes: what its entries are and what made them
        self.metadata = dict(metadata or {})
        self._fs, self._root = filesystem(folder)
        self._entries: dict[str, torch.Tensor] = {}
        self._new: dict[str, torch.Tensor] = {}
        self.shards_read = 0
        self._read()

    def _read(self) -> None:
        from safetensors.torch import load

        if not self._fs.exists(self._root):
            return
        for path in sorted(p for p in self._fs.ls(self._root, detail=False) if p.endswith(SUFFIX)):
            try:
                self._entries.update(load(self._fs.cat_file(path)))
            except Exception as exc:  # noqa: BLE001 - any unreadable shard means the same: compute again
                log.warning("cache shard %s is unreadable (%s); its entries will be computed again", path, exc)
                continue
            self.shards_read += 1

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> set[str]:
        return set(self._entries)

    def get(self, name: str) -> torch.Tensor:
        return self._entries[name]

    def add(self, name: str, tensor: torch.Tensor) -> None:
        """Keep ``tensor`` under ``name`` (on the CPU); written by the next ``flush``."""
        value = tensor.detach().to("cpu").contiguous()
        self._entries[name] = value
        self._new[name] = value

    @property
    def unwritten(self) -> int:
        return len(self._new)

    def flush(self) -> str | None:
        """Write the entries added since the last flush as a new shard; returns its path."""
        if not self._new:
            return None
        from safetensors.torch import save

        path = join(self.folder, f"part-{uuid.uuid4().hex}{SUFFIX}")
        write_bytes(path, save(self._new, metadata=self.metadata or None))
        log.info("cache: %d entries written to %s", len(self._new), path)
        self._new = {}
        return path
