"""What the scale-out benchmark's Ray workers and child processes run: plain decoding (the
ceiling ingest is measured against), and the cascade step recording which input shard each chunk
it starts belongs to (for counting the shards a resumed run scores twice)."""

from __future__ import annotations

import io
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


def decode_only(data: bytes | None) -> int:
    """1 when ``data`` fully decodes, else 0: decoding and nothing else."""
    from PIL import Image

    if not data:
        return 0
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
        return 1
    except Exception:  # noqa: BLE001 - a corrupt image is a 0 here, not a failed benchmark
        return 0


class DecodeChunk:
    """The data plane's step for plain decoding: a chunk of image bytes in, a count out."""

    def __call__(self, images: list[bytes | None]) -> int:
        return sum(decode_only(data) for data in images)
