"""The training set's dataset card: README.md in the dataset folder, for the people who train on
it and audit it: counts, buckets, sources, caption provenance, upsampling, and the versions of
every dataset upstream of it (DVC md5 where dvc.lock records one that still matches the folder,
and always the manifest's sha256).

The card lives inside the dataset, so it holds no times or run ids: the same data gives the
same card, and the same DVC md5, whichever runner made it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


def share_table(counts: Counter, total: int) -> list[str]:
    return [f"| {key} | {count} | {count / total:.1%} |" for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))]


def render_card(*, name: str, input_name: str, rows: list[dict[str, Any]], quarantined: int,
                upstream: list[dict[str, Any]], params: dict[str, Any]) -> str:
    total = len(rows) or 1
    splits = Counter(r["split"] for r in rows)
    buckets = Counter(r["bucket"] for r in rows)
    captions = Counter(r["caption_source"] or "unknown" for r in rows)
    upsampled = Counter(r["upsample_backend"] or "not upsampled" for r in rows)
    sources = Counter(r["source_kind"] or "unknown" for r in rows)
    origins = Counter((r["source"] or "").split("#", 1)[0].rsplit("/", 1)[-1] or "unknown" for r in rows)
    n_up = sum(1 for r in rows if r["upsample_backend"])
    lines = [
        f"# Dataset card: {name}",
        "",
        f"The training set packaged from `{input_name}`: images resized and cropped to aspect-ratio buckets of "
        f"about {params['resolution']}² pixels, with their training captions, in WebDataset shards "
        "(`shards/shard-NNNNNN.tar`: `{sample_id}.<image>`, `.txt` caption, `.json` metadata) and a manifest "
        "(`manifest.parquet`) that gives each image's byte range.",
        "",
        "## Counts",
        "",
        "| | rows |",
        "|---|---|",
        f"| total | {len(rows)} |",
        f"| train | {splits.get('train', 0)} |",
        f"| validation | {splits.get('validation', 0)} |",
        f"| quarantined (not packaged) | {quarantined} |",
        "",
        f"Validation: {params['validation_share']:.1%} of samples by a salted sha256 of the sample_id "
        f"(salt `{params['split_salt']}`); adding rows never moves a sample between splits.",
        "",
        "## Buckets",
        "",
        "| bucket (w×h) | rows | share |",
        "|---|---|---|",
        *share_table(buckets, total),
        "",
        f"Crop: {params['crop']}; the crop's top-left corner in the resized image is in `crop_left`/`crop_top`, the "
        "size before upsampling in `original_width`/`original_height` (SDXL's size and crop conditioning).",
        "",
        "## Sources",
        "",
        "| source kind | rows | share |",
        "|---|---|---|",
        *share_table(sources, total),
        "",
        "| source file | rows | share |",
        "|---|---|---|",
        *share_table(origins, total),
        "",
        "## Caption provenance",
        "",
        "| training caption from | rows | share |",
        "|---|---|---|",
        *share_table(captions, total),
        "",
        "## Upsampling",
        "",
        f"Upsampled share: {n_up / total:.1%} ({n_up} of {len(rows)}).",
        "",
        "| backend | rows | share |",
        "|---|---|---|",
        *share_table(upsampled, total),
        "",
        "## Upstream datasets",
        "",
        "DVC md5: the version `dvc.lock` records for the folder, shown only while it still matches the folder "
        "(`dvc pull` restores it); content hash: sha256 of the manifest, which names every image by its sha256.",
        "",
        "| dataset | made by stage | rows | DVC md5 | content hash (sha256 of manifest) |",
        "|---|---|---|---|---|",
        *(f"| {u['dataset']} | {u['stage']} | {u['rows'] if u['rows'] is not None else 'missing'} | "
          f"{u['dvc_md5'] or 'unknown'} | {u['content_hash'] or 'missing'} |" for u in upstream),
        "",
    ]
    return "\n".join(lines)
