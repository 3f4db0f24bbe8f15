"""What the scale-out benchmark's child processes run: the cascade step, recording which input
shard each chunk it starts belongs to (for counting the shards a resumed run scores twice)."""

from __future__ import annotations

import os

from photogenic.filtering.cascade import CascadeStep

#: the file the steps append the shard of every chunk they start to
STARTED_ENV = "SCALE_OUT_STARTED"


class RecordingStep(CascadeStep):
    def __call__(self, batch):
        path = os.environ.get(STARTED_ENV)
        if path and batch.index:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(f"{batch.table['shard'][0].as_py()}\n")
        return super().__call__(batch)
