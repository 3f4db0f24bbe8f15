"""Columns the upsample stage adds to the manifest, and how a later stage finds the image to use.

The input's own columns (``shard``, ``offset``, ``length``, ``width``, ``height``) keep pointing
at the original image; an upsampled row also points at its new image, stored in the upsampled
dataset's own shards under the sha256 of its bytes. Rows that needed no upsampling have nulls
in every ``upsampled_*`` / ``upsample_*`` column.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

UPSAMPLE_COLUMNS: dict[str, pa.DataType] = {
    # sha256 of the new image's bytes (its key in the shard)
    "upsampled_sha256": pa.string(),
    # where the new image lives, relative to the manifest's folder, and its byte range
    "upsampled_shard": pa.string(),
    "upsampled_offset": pa.int64(),
    "upsampled_length": pa.int64(),
    "upsampled_width": pa.int32(),
    "upsampled_height": pa.int32(),
    # lanczos | diffusion-x4 | diffusion-latent
    "upsample_backend": pa.string(),
    # the linear factor the short side grew by
    "upsample_scale": pa.float64(),
    # the seed the sample was upsampled with (diffusion noise; recorded for lanczos too)
    "upsample_seed": pa.int64(),
    # short side of the image later stages use (upsampled when there is one, else the original)
    "training_short_side": pa.int32(),
}


def training_image_pointer(row: dict[str, Any]) -> dict[str, Any]:
    """The shard pointer and size of the image a row trains on: the upsampled one if any."""
    if row.get("upsampled_shard"):
        return {"shard": row["upsampled_shard"], "offset": row["upsampled_offset"],
                "length": row["upsampled_length"], "width": row["upsampled_width"],
                "height": row["upsampled_height"]}
    return {key: row[key] for key in ("shard", "offset", "length", "width", "height")}
