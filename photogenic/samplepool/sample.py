"""One sample from its coordinates alone: scene, pixels, bytes, caption, metadata, ground truth.

``build_sample(context, index)`` is a pure function of (seed, n, spec, index), which is what
lets worker processes build samples in any order and still produce byte-identical shards.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Any

from PIL import Image

from photogenic.samplepool.captions import alt_text, encode_caption, scene_caption
from photogenic.samplepool.defects import (
    JPEG_QUALITY,
    apply_pixel_defects,
    corrupt_bytes,
    encode_jpeg,
    near_duplicate,
    truncate_jpeg,
)
from photogenic.samplepool.plan import SamplePlan, plan_pool
from photogenic.samplepool.render import Rendered, render_scene
from photogenic.samplepool.rng import CAPTION, DEFECT, META, RENDER, SCENE, stream
from photogenic.samplepool.spec import SamplePoolSpec
from photogenic.samplepool.world import Scene, sample_scene

#: made-up hosts under the reserved .example domain, so no URL ever points at a real site
HOSTS = ("img.picshare.example", "cdn.snapgallery.example", "media.homeblog.example",
         "static.shopfront.example", "photos.travelnotes.example")
#: a sample's short side below this is upsampled later in the recipe
UPSAMPLE_BELOW = 512


@dataclass(frozen=True)
class PoolContext:
    """What every sample is a function of; small enough to send to each worker once."""

    seed: int
    n: int
    shard_size: int
    spec: SamplePoolSpec
    plan: tuple[SamplePlan, ...]

    @classmethod
    def create(cls, n: int, seed: int, shard_size: int, spec: SamplePoolSpec) -> PoolContext:
        return cls(seed, n, shard_size, spec, plan_pool(n, seed, spec))

    def shard_of(self, index: int) -> int:
        return index // self.shard_size

    def key(self, index: int) -> str:
        """img2dataset's key: shard number (5 digits) then index in the shard (4 digits here;
        more when a shard holds more than 10,000 samples)."""
        digits = max(4, len(str(self.shard_size - 1)))
        return f"{self.shard_of(index):05d}{index % self.shard_size:0{digits}d}"


@dataclass(frozen=True)
class SampleRecord:
    key: str
    image: bytes
    caption: bytes
    #: the ``.json`` member, in img2dataset's field order
    meta: dict[str, Any]
    #: the sample's row of ground_truth.parquet
    truth: dict[str, Any]


def scene_of(ctx: PoolContext, index: int) -> Scene:
    """The scene a sample shows: its own, or a near-duplicate's original's."""
    source = _scene_index(ctx, index)
    return sample_scene(stream(SCENE, ctx.seed, source), ctx.plan[source].image_defects, ctx.spec.composed)


def render_clean(ctx: PoolContext, index: int) -> Rendered:
    """The sample's scene before any pixel defect, at its size: what a defect is measured against."""
    return render_scene(scene_of(ctx, index), stream(RENDER, ctx.seed, _scene_index(ctx, index)))


def build_sample(ctx: PoolContext, index: int) -> SampleRecord:
    plan = ctx.plan[index]
    scene = scene_of(ctx, index)
    data, size, box, texts = _image_bytes(ctx, index, plan, scene)
    caption_rng = stream(CAPTION, ctx.seed, index)
    alt = alt_text(scene, caption_rng)
    caption = encode_caption(alt, plan.defects, caption_rng)
    photogenic = scene.composed and not plan.image_defects
    key = ctx.key(index)
    meta = _metadata(ctx, index, key, alt, caption, data, size, appeal=0.5 * scene.composed
                     + 0.5 * (not plan.image_defects), category=scene.concept)
    truth = {
        "key": key,
        "shard": ctx.shard_of(index),
        "sample_index": index,
        "subject_kind": scene.kind,
        "concept": scene.concept,
        "subject_colour": scene.colour,
        "background": scene.background,
        "lighting": scene.lighting,
        "placement": scene.placement,
        "weaknesses": list(scene.weaknesses),
        "defects": list(plan.defects),
        "photogenic": photogenic,
        "scene_caption": scene_caption(scene),
        "near_duplicate_of": None if plan.duplicate_of is None else ctx.key(plan.duplicate_of),
        "width": size[0],
        "height": size[1],
        "is_upsample_candidate": photogenic and min(size) < UPSAMPLE_BELOW,
        "subject_box": None if box is None else list(box),
        "overlay_text": " | ".join(texts) or None,
    }
    return SampleRecord(key, data, caption, meta, truth)


def _scene_index(ctx: PoolContext, index: int) -> int:
    duplicate_of = ctx.plan[index].duplicate_of
    return index if duplicate_of is None else duplicate_of


def _image_bytes(
    ctx: PoolContext, index: int, plan: SamplePlan, scene: Scene
) -> tuple[bytes, tuple[int, int], tuple[int, int, int, int] | None, list[str]]:
    """The image member's bytes, the image size, the subject box and any text drawn on it.

    A corrupt sample is never rendered; its size is the one its metadata claims.
    """
    rng = stream(DEFECT, ctx.seed, index)
    if "corrupt" in plan.defects:
        return corrupt_bytes(rng), (scene.width, scene.height), None, []
    if "exact_duplicate" in plan.defects:  # the original's very bytes
        return _image_bytes(ctx, plan.duplicate_of, ctx.plan[plan.duplicate_of], scene)
    rendered = render_clean(ctx, index)
    if plan.duplicate_of is None:
        image, texts = apply_pixel_defects(rendered.image, plan.defects, rng)
        box, quality = rendered.box, JPEG_QUALITY
    else:
        image, box, quality = near_duplicate(rendered.image, rendered.box, rng)
        texts = []
    data = encode_jpeg(image, quality)
    if "truncated" in plan.defects:
        data = truncate_jpeg(data, rng)
    return data, image.size, box.pixels(), texts


def _metadata(
    ctx: PoolContext, index: int, key: str, alt: str, caption: bytes, data: bytes,
    size: tuple[int, int], appeal: float, category: str,
) -> dict[str, Any]:
    """img2dataset's per-sample fields (resize_mode "no": original size = size) plus the
    source's engagement counts, which follow ``appeal`` loosely (heavy-tailed noise), and the
    category the source filed the image under (its subject's concept, as a stock or social
    site's category column would give it)."""
    rng = stream(META, ctx.seed, index)
    slug = re.sub(r"[^a-z0-9]+", "-", alt.lower()).strip("-") or "image"
    host = HOSTS[int(rng.integers(len(HOSTS)))]
    views = int(rng.lognormal(5.0 + 1.2 * appeal, 1.1))
    likes = int(rng.binomial(views, rng.beta(2.0 + 3.0 * appeal, 60.0)))
    return {
        "url": f"https://{host}/{int(rng.integers(2**32)):08x}/{slug}.jpg",
        "caption": caption.decode("utf-8", errors="replace"),
        "likes": likes,
        "views": views,
        "category": category,
        "key": key,
        "status": "success",
        "error_message": None,
        "width": size[0],
        "height": size[1],
        "original_width": size[0],
        "original_height": size[1],
        "exif": None,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def render_full_resolution(ctx: PoolContext, index: int, scale: int) -> Image.Image:
    """The sample's scene drawn clean (no pixel defects) at ``scale`` times its size, from the
    same scene and render stream: the full-resolution original a small sample stands for, which
    upsampling benchmarks compare against. Textures are drawn per pixel grid, so this is the same
    scene, not a pixel-exact enlargement of ``render_clean``; compare against it after reducing
    it to the sample's size yourself."""
    scene = scene_of(ctx, index)
    big = replace(scene, width=scene.width * scale, height=scene.height * scale)
    return render_scene(big, stream(RENDER, ctx.seed, _scene_index(ctx, index))).image
